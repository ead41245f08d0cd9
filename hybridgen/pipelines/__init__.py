"""The hybrid pipeline and its strategies."""

from hybridgen.pipelines.hybrid import HybridOutput, HybridPipeline

__all__ = ["HybridOutput", "HybridPipeline"]
