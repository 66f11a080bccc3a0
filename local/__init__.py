"""Local tooling: the demo and (later) the local stack. Never imported by the functions."""
