"""The `unroll` command line: check, show, graph, compile, zoo, train and demo."""
