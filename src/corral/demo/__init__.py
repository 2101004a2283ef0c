"""A deterministic synthetic retail warehouse for demos, tutorials and benchmarks."""

from corral.demo.generate import DEMO_AS_OF, DemoStats, generate_into, generate_warehouse

__all__ = ["DEMO_AS_OF", "DemoStats", "generate_into", "generate_warehouse"]
