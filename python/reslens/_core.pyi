# Type stubs of reslens._core, the compiled bindings (python/src/bind_*.cpp). Every ndarray returned
# here is a read-only zero-copy view that keeps its owner (model, run or explanation) alive.
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
HAS_EXPERIMENT: bool

def _last_call_seconds() -> float: ...

class Error(Exception): ...
class IoError(Error, OSError): ...
class NotFoundError(IoError, FileNotFoundError): ...
class FormatError(Error, ValueError): ...
class UnsupportedError(Error, NotImplementedError): ...
class Cancelled(Error): ...

Ids = Sequence[int] | npt.NDArray[np.integer]

class Model:
    @staticmethod
    def load(path: str, tokenizer: str = "") -> Model: ...
    def config(self) -> Dict[str, Any]: ...
    def hook_names(self) -> List[str]: ...
    def tensors(self) -> List[Tuple[str, str, List[int]]]: ...
    @property
    def mapped_bytes(self) -> int: ...
    @property
    def owned_bytes(self) -> int: ...
    def weight(self, name: str, layer: int = -1) -> Optional[npt.NDArray[np.float32]]: ...
    def encode(self, text: str, add_bos: bool, parse_special: bool = True) -> List[int]: ...
    @property
    def chat_template(self) -> str: ...
    @staticmethod
    def format_chat(template: str, user: str, system: str = "") -> str: ...
    def decode(self, ids: Ids) -> bytes: ...
    def token_texts(self, ids: Ids) -> List[str]: ...
    def piece(self, id: int) -> bytes: ...
    def find_piece(self, piece: str) -> int: ...
    @property
    def bos_id(self) -> int: ...
    @property
    def eos_id(self) -> int: ...
    @property
    def n_vocab(self) -> int: ...
    def resolve_token(self, spec: str, what: str = "target") -> Tuple[List[int], str]: ...

class Intervention:
    def __init__(self, ffn: Sequence[Tuple[int, int]] = ..., heads: Sequence[Tuple[int, int]] = ...,
                 attn: Sequence[Tuple[int, int, int, int]] = ..., position: int = -1) -> None: ...
    @property
    def empty(self) -> bool: ...

class RunResult:
    @property
    def logits(self) -> npt.NDArray[np.float32]: ...
    def get(self, name: str) -> npt.NDArray[np.float32]: ...
    def contains(self, name: str) -> bool: ...
    def names(self) -> List[str]: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def pattern_rows(self) -> List[int]: ...

def run(model: Model, tokens: Ids, patterns: Optional[Sequence[str]] = ..., all_logits: bool = True,
        threads: int = 0, intervention: Optional[Intervention] = None, ggml_gelu: bool = False,
        pattern_rows: Sequence[int] = ...) -> RunResult: ...
def explain_capture() -> List[str]: ...
def validate_patterns(patterns: Sequence[str]) -> None: ...
def _time_run(model: Model, tokens: Ids, patterns: Optional[Sequence[str]], all_logits: bool = True,
              threads: int = 0, repeats: int = 1) -> List[float]: ...

class Explanation:
    position: int
    target: int
    foil: int
    n_positions: int
    tokens: npt.NDArray[np.int32]
    notes: List[str]
    run: RunResult
    real_logit: float
    real_log_prob: float
    real_prob: float
    real_rank: int
    frozen_scale: float
    bs_log_prob_final: float
    bs_log_prob_embedding: float
    lens: List[Tuple[str, int, float, float, List[int], List[float]]]
    attn_layer: npt.NDArray[np.float64]
    ffn_layer: npt.NDArray[np.float64]
    head: npt.NDArray[np.float64]
    head_position: npt.NDArray[np.float64]
    attn_weight: npt.NDArray[np.float64]
    ffn_neuron: npt.NDArray[np.float64]
    ffn_coef: npt.NDArray[np.float64]
    attn_neuron: npt.NDArray[np.float64]
    attn_coef: npt.NDArray[np.float64]
    ffn_value_query_layers: Dict[str, npt.NDArray[np.float64]]
    attn_value_query_key: str
    attn_value_query_layers: npt.NDArray[np.float64]
    attn_value_query_avg_layer: float
    query_ffn_neuron: npt.NDArray[np.float64]
    query_only_per_layer: npt.NDArray[np.int64]
    query_value_per_layer: npt.NDArray[np.int64]
    baselines: Dict[str, npt.NDArray[np.float64]]
    has_contrast: bool
    contrast_attn_layer: Optional[npt.NDArray[np.float64]]
    contrast_ffn_layer: Optional[npt.NDArray[np.float64]]
    contrast_head: Optional[npt.NDArray[np.float64]]
    contrast_ffn_neuron: Optional[npt.NDArray[np.float64]]
    contrast_attn_neuron: Optional[npt.NDArray[np.float64]]
    checks: Dict[str, float]
    method_counts: Dict[str, int]
    options: Dict[str, Any]
    def to_json(self, top: int = 20, token_k: int = 10, view_heads: int = 3, view_neurons: int = 10) -> str: ...
    def to_text(self, top: int = 20, token_k: int = 10, view_heads: int = 3, view_neurons: int = 10) -> str: ...
    def to_html(self, top: int = 20, token_k: int = 10, view_heads: int = 3, view_neurons: int = 10) -> Optional[str]: ...
    def write_arrays(self, dir: str) -> None: ...
    def ffn_neuron_view(self, layer: int, neuron: int, k: int = 10) -> Tuple[Dict[str, Any], Dict[str, Any], float]: ...
    def attn_neuron_view(self, layer: int, head: int, dim: int, pos: int, k: int = 10
                         ) -> Tuple[Dict[str, Any], Dict[str, Any], float]: ...
    def head_position_views(self, layer: int, head: int, k: int = 10) -> List[Dict[str, Any]]: ...
    def project_tokens(self, vector: Sequence[float], k: int = 10) -> Dict[str, Any]: ...

def explain(model: Model, tokens: Ids, target: Union[int, str, None] = None, foil: Union[int, str, None] = None, position: int = -1,
            include_final_bias: bool = False, compat_notebook: bool = False, baselines: bool = False,
            query_top_n: int = 30, set_size: int = 300, lens_top_k: int = 10, threads: int = 0,
            method: str = "auto", bound_tol: float = 8e-6, projection_cache: bool = True,
            projection_sketch: bool = True) -> Explanation: ...
class ExplainedTarget:
    single: bool
    position: int
    prompt: npt.NDArray[np.int32]
    target_ids: npt.NDArray[np.int32]
    foil_ids: npt.NDArray[np.int32]
    contrast_step: int
    first_foil_step: int
    notes: List[str]
    generated: Optional[Dict[str, Any]]
    steps: List[Explanation]
    foil_steps: List[Explanation]
    n_positions: int
    log_prob: float
    foil_log_prob: float
    bs_log_prob_final: float
    bs_log_prob_embedding: float
    attn_layer: npt.NDArray[np.float64]
    ffn_layer: npt.NDArray[np.float64]
    head: npt.NDArray[np.float64]
    head_position: npt.NDArray[np.float64]
    ffn_neuron: npt.NDArray[np.float64]
    expert: Optional[npt.NDArray[np.float64]]
    attn_neuron: npt.NDArray[np.float64]
    query_ffn_neuron: npt.NDArray[np.float64]
    ffn_value_query_layers: Dict[str, npt.NDArray[np.float64]]
    attn_value_query_layers: npt.NDArray[np.float64]
    query_only_per_layer: npt.NDArray[np.int64]
    query_value_per_layer: npt.NDArray[np.int64]
    has_contrast: bool
    contrast_attn_layer: Optional[npt.NDArray[np.float64]]
    contrast_ffn_layer: Optional[npt.NDArray[np.float64]]
    contrast_head: Optional[npt.NDArray[np.float64]]
    contrast_ffn_neuron: Optional[npt.NDArray[np.float64]]
    contrast_attn_neuron: Optional[npt.NDArray[np.float64]]
    contrast_expert: Optional[npt.NDArray[np.float64]]
    checks: Dict[str, float]
    method_counts: Dict[str, int]
    def to_json(self, top: int = 20, token_k: int = 10, view_heads: int = 3, view_neurons: int = 10) -> str: ...
    def to_text(self, top: int = 20, token_k: int = 10, view_heads: int = 3, view_neurons: int = 10) -> str: ...
    def to_html(self, top: int = 20, token_k: int = 10, view_heads: int = 3, view_neurons: int = 10) -> str: ...
    def to_jsonl(self, top: int = 20, token_k: int = 10, view_heads: int = 3, view_neurons: int = 10) -> str: ...
    def write_arrays(self, dir: str) -> None: ...

def continuation_tokens(model: Model, prompt: Ids, joint: Ids, text: str) -> List[int]: ...
def explain_target(model: Model, tokens: Ids, target: Union[int, str, Sequence[int], None] = None,
                   foil: Union[int, str, Sequence[int], None] = None, position: int = -1,
                   include_final_bias: bool = False, compat_notebook: bool = False, baselines: bool = False,
                   query_top_n: int = 30, set_size: int = 300, lens_top_k: int = 10, threads: int = 0,
                   method: str = "auto", generate: int = 0, temperature: float = 0.0,
                   seed: int = 0, bound_tol: float = 8e-6, projection_cache: bool = True,
                   projection_sketch: bool = True, extended_head: int = -1,
                   should_stop: Optional[Callable[[], Any]] = None) -> ExplainedTarget: ...
def check_score_knobs(method: str, bound_tol: float) -> None: ...
def _time_explain(model: Model, tokens: Ids, threads: int = 0, repeats: int = 1) -> List[float]: ...
def ablate_request(model: Model, tokens: Ids, target: Union[int, str, None], intervention: Intervention,
                   position: int = -1, activation: bool = False, seed: Optional[int] = None,
                   threads: int = 0) -> Dict[str, Any]: ...
def ablate(model: Model, tokens: Ids, target: int, intervention: Intervention, position: int = -1,
           threads: int = 0) -> Tuple[Dict[str, Any], Dict[str, Any]]: ...
class ExperimentArgs:
    filter_top_k: int
    ffn_top: int
    attn_top: int
    attn_ffn_top: int
    query_top: int
    shared_set: int
    max_fraction: float
    query_value_neurons: int
    baselines: bool
    random: bool
    strict: bool
    seed: int
    add_bos: Optional[bool]
    parse_special: bool
    threads: int
    shard: str
    def __init__(self) -> None: ...

def experiment(model: Model, path: Optional[str], text: Optional[str], name: str, options: ExperimentArgs,
               progress: Optional[Callable[[int, int, int, float], None]]
               ) -> Tuple[str, List[str], List[Tuple[int, str]], str, str]: ...
def target_stats(logits: Sequence[float], target: int) -> Dict[str, Any]: ...
def top_indices(values: Sequence[float], n: int) -> List[int]: ...
def projection_cache_info(model: Model) -> Dict[str, Any]: ...
def precompute_projections(model: Model, threads: int = 0,
                           progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]: ...
def label_head(layer: int, head: int) -> str: ...
def label_ffn_neuron(layer: int, neuron: int) -> str: ...
def label_attn_neuron(layer: int, head: int, dim: int, pos: int) -> str: ...
def label_layer(layer: int, ffn: bool) -> str: ...

# reslens diff and reslens graph (bind_diff.cpp; python/reslens/diff.py, graph.py).
class ModelDiff:
    max_abs_delta: float
    def to_json(self, top: int = 20) -> str: ...
    def text(self, top: int = 20) -> str: ...
    def arrays(self) -> Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]]: ...

def diff(model_a: Model, model_b: Model, tokens: Ids, target: Union[int, str, None] = None,
         foil: Union[int, str, None] = None, position: int = -1, top: int = 20, split_top: int = 20,
         include_final_bias: bool = False, threads: int = 0, method: str = "auto", bound_tol: float = 8e-6,
         projection_cache: bool = True, projection_sketch: bool = True, extended_head: int = -1) -> ModelDiff: ...

class CircuitGraph:
    nodes_before: int
    edges_before: int
    def to_json(self) -> str: ...

def graph(model: Model, tokens: Ids, target: Union[int, str, None] = None, position: int = -1, top_values: int = 10,
          top_heads: int = 5, top_queries: int = 20, node_threshold: float = 0.8, edge_threshold: float = 0.98,
          include_final_bias: bool = False, threads: int = 0, method: str = "auto", bound_tol: float = 8e-6,
          projection_cache: bool = True, projection_sketch: bool = True, extended_head: int = -1) -> CircuitGraph: ...

# bind_hooks.cpp: forward hooks and generation
def run_with_hooks(model: Model, tokens: Ids, patterns: Optional[Sequence[str]] = ...,
                   hooks: Sequence[Tuple[str, Callable[[npt.NDArray[np.float32], str], Optional[npt.ArrayLike]]]] = ...,
                   all_logits: bool = True, threads: int = 0,
                   intervention: Optional[Intervention] = None) -> RunResult: ...
def generate(model: Model, tokens: Ids, max_tokens: int = 32, temperature: float = 0.0, seed: int = 0,
             threads: int = 0) -> Dict[str, Any]: ...
