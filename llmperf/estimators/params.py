"""Parameter counts (total, active per token, by component) read off the op model.

The op builder attaches to every op the parameters it holds, so parameters, FLOPs and bytes
come from one description of the network and cannot drift apart.
"""

from __future__ import annotations

import pandas as pd

from llmperf.named_inputs import accepts_names
from llmperf.ops.builder import build_step_ops
from llmperf.specs.model import ModelSpec
from llmperf.specs.workload import Step, Workload

_COMPONENT = {
    "embed_tokens": "embedding", "embed_positions": "embedding", "lm_head": "lm_head",
    "router": "moe_router", "shared_expert_gate": "moe_router",
}


def _component(op_name: str, kind: str) -> str:
    if op_name in _COMPONENT:
        return _COMPONENT[op_name]
    if op_name.startswith("experts_"):
        return "moe_experts"
    if op_name.startswith("shared_"):
        return "moe_shared_experts"
    if kind == "norm":
        return "norms"
    if op_name in ("gate_up_proj", "gate_proj", "up_proj", "down_proj", "fc1", "fc2"):
        return "mlp"
    return "attention"


@accepts_names
def parameter_table(model: ModelSpec) -> pd.DataFrame:
    """One row per parameter-holding op: group, op, component, count, params, active params."""
    ops = build_step_ops(model, Workload(), Step.prefill(1, 1))
    rows = [{"group": o.group, "op": o.name, "component": _component(o.name, o.kind),
             "count": o.count, "params": o.params * o.count,
             "active_params": o.active_params * o.count} for o in ops if o.params]
    return pd.DataFrame(rows)


@accepts_names
def parameter_counts(model: ModelSpec) -> dict:
    """Totals: ``params_total``, ``params_active`` (per token) and ``params_<component>``."""
    table = parameter_table(model)
    out = {"params_total": float(table["params"].sum()),
           "params_active": float(table["active_params"].sum())}
    for comp, value in table.groupby("component")["params"].sum().items():
        out[f"params_{comp}"] = float(value)
    return out
