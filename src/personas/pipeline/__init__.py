"""The main job end to end: ``Pipeline(load_config("run.toml")).run()`` or ``personas run run.toml``."""

from personas.pipeline.artefact import Placement, RunArtefact, load_run, write_run
from personas.pipeline.config import PipelineConfig, load_config
from personas.pipeline.run import Pipeline, PipelineResult

__all__ = [
    "Pipeline",
    "PipelineConfig",
    "PipelineResult",
    "Placement",
    "RunArtefact",
    "load_config",
    "load_run",
    "write_run",
]
