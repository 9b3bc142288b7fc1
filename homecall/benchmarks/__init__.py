"""Benchmarks behind `homecall bench`: each module exposes add_arguments and run."""
