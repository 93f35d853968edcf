"""`d2tf bench`: time, size and memory of each stage and runtime (run.py), each runtime measured in a process of its
own (latency.py)."""
