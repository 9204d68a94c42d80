"""The demo driver: launch the components as processes, seed, drive a workload, check and summarise."""
