"""Paper reproductions: train the zoo networks as their papers did and compare with their tables."""
from .ista_net import NETWORKS, PAPER_TABLE1, ReproduceConfig, format_table, reproduce_ista_net, ship_pretrained

__all__ = ["NETWORKS", "PAPER_TABLE1", "ReproduceConfig", "format_table", "reproduce_ista_net", "ship_pretrained"]
