"""The shipped ADMM-Net weights (CS-MRI, chest, 20 % mask; trained here with `unroll train`) load
with weights_only=True through unroll.zoo.pretrained and reproduce their record on chest images."""
import json

import numpy as np

import unroll
from unroll.zoo.weights import PRETRAINED_DIR

RECORD = PRETRAINED_DIR / "admm_net_exact_r20.json"


def test_shipped_admm_net_reproduces_its_record():
    from unroll.data import resolve_data_dir
    from unroll.data.mri import MRITask
    from unroll.evaluate.mri import evaluate_methods
    model = unroll.zoo.pretrained("admm_net_exact", 20).double()
    rec = model.pretrained_record
    assert rec == json.loads(RECORD.read_text()) and "unroll train" in rec["command"]
    task = MRITask.from_data_dir(resolve_data_dir(None)[0], mask=20, size=256)
    first = rec["first_chest_val_images"]
    images = [(n, im) for n, im in task.test_images if n in first["names"]]
    assert [n for n, _ in images] == first["names"]
    P = model.P.detach().double().numpy()
    got = evaluate_methods({"trained": model}, images, P, baseline=False).method("trained").psnr
    np.testing.assert_allclose(got, first["psnr"], atol=0.01)
