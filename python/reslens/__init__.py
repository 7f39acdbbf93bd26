"""reslens: explain a transformer's next-token prediction by taking its residual stream apart
(Yu et al., EMNLP 2024), from Python.

>>> import reslens
>>> model = reslens.load("../shared/models/stories260K/stories260K.gguf")
>>> logits, cache = model.run_with_cache("Once upon a time")
>>> cache["blocks.3.hook_resid_pre"].shape           # [pos, d_model]: no batch dimension
(5, 64)
>>> ex = reslens.explain(model, "Once upon a time")  # every score of `reslens explain`
>>> ex.top_ffn_neurons[0]
FfnNeuronScore(layer=..., neuron=..., label='L...N...', score=..., coef=...)

Names and shapes follow TransformerLens where the concept is the same (docs/python.md lists the
differences). Arrays are read-only numpy views over reslens's own memory; heavy calls release the GIL.
"""

from . import _core
from ._core import Cancelled, Error, FormatError, IoError, NotFoundError, UnsupportedError
from .ablate import AblationResult, RandomBaseline, TargetStats, ablate
from .cache import ActivationCache
from .diff import ModelDiff, diff
from .diff_batch import DiffBatchResult, diff_batch
from .explain_batch import BatchResult, explain_batch
from .experiment import ExperimentResult, experiment
from .explain import (AttnNeuronScore, Explanation, FfnNeuronScore, HeadScore, LayerScore, LensPoint,
                      QueryNeuronScore, TokenInfo, explain, explain_target, precompute_projections,
                      projection_cache_info, top_indices)
from .graph import Graph, graph
from .generation import LensResult, lens
from .hooks import HookPoint
from .model import Config, LayerParams, Model, load
from .target import SummedAttnNeuronScore, SummedFfnNeuronScore, SummedHeadScore, TargetExplanation
from .utils import get_act_name
from .batch import BatchedActivationCache
from .fold import FoldedModel
from .intervention import Intervention
from .norm import Norm
from .weights import FactoredMatrix

__version__ = _core.__version__

__all__ = [
    "load", "Model", "Config", "LayerParams", "ActivationCache", "explain", "Explanation", "ablate", "experiment",
    "explain_target", "TargetExplanation", "SummedHeadScore", "SummedFfnNeuronScore", "SummedAttnNeuronScore",
    "AblationResult", "ExperimentResult", "TargetStats", "RandomBaseline", "TokenInfo", "LensPoint", "LayerScore", "HeadScore",
    "FfnNeuronScore", "AttnNeuronScore", "QueryNeuronScore", "Intervention", "get_act_name", "top_indices",
    "precompute_projections", "projection_cache_info", "diff", "ModelDiff", "graph", "Graph",
    "BatchedActivationCache", "FoldedModel", "Norm", "FactoredMatrix",
    "explain_batch", "BatchResult",
    "diff_batch", "DiffBatchResult",
    "Error", "IoError", "NotFoundError", "FormatError", "UnsupportedError", "Cancelled", "__version__",
    "lens", "LensResult", "HookPoint",
]
