"""One operation of a forward step: its work (FLOPs), its traffic (bytes by role) and its shape.

Every numeric field is a float numpy array broadcastable to the workload grid (scalars where a
quantity does not vary, e.g. weight bytes); ``count`` says how many identical instances run per step (the layers of a group),
so identical layers are computed once.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Op kinds (DESIGN.md rule 4). Calibration looks efficiencies up by kind, dtype and shape.
GEMM = "gemm"
ATTENTION = "attention"
NORM = "norm"
ELEMENTWISE = "elementwise"
EMBEDDING = "embedding"
COMMUNICATION = "communication"
KINDS = (GEMM, ATTENTION, NORM, ELEMENTWISE, EMBEDDING, COMMUNICATION)

BYTE_ROLES = ("weight_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes", "kv_write_bytes")

# Non-tensor operations per element for memory-bound ops. This is our counting convention (no
# source counts these the same way): RMSNorm = square, accumulate, scale, multiply by weight;
# LayerNorm adds the mean pass and bias; SiLU*mul ~ exp, add, divide, two multiplies; RoPE = two
# multiplies and one add per element (rotation of pairs). They only matter where an op would be
# compute-bound, which these never are (intensity < 2 FLOP/byte).
VECTOR_FLOPS_PER_ELEMENT = {"rmsnorm": 4.0, "layernorm": 7.0, "gated_act": 5.0, "act": 4.0,
                            "add": 1.0, "rope": 3.0, "scale": 1.0, "combine": 2.0, "dequant": 2.0}


@dataclasses.dataclass(frozen=True)
class Op:
    """One op instance; totals per step are the fields times ``count``.

    flops: tensor-core FLOPs (2 per multiply-add). vector_flops: FLOPs on the vector/CUDA cores
    (norms, activations, weight dequantization). *_bytes: device-memory traffic by role.
    comm_bytes: bytes each device sends over the scale-up link (communication ops).
    compute_dtype: which dense peak bounds ``flops`` (bf16, fp16, fp8, int8, tf32).
    params / active_params: parameters held / used per token by one instance (unsharded).
    held_weight_bytes: bytes of the weights this device stores for one instance (its TP shard,
    every expert), which differs from ``weight_bytes`` read per step (MoE, embeddings).
    kernels: kernel launches per instance (for the per-kernel overhead).
    shape: what calibration needs to look up an efficiency (GEMM m/n/k; attention lengths).
    """

    name: str
    kind: str
    group: str
    count: int
    flops: np.ndarray
    vector_flops: np.ndarray
    weight_bytes: np.ndarray
    act_in_bytes: np.ndarray
    act_out_bytes: np.ndarray
    kv_read_bytes: np.ndarray
    kv_write_bytes: np.ndarray
    comm_bytes: np.ndarray
    compute_dtype: str
    weight_dtype: str
    params: float = 0.0
    active_params: float = 0.0
    held_weight_bytes: float = 0.0
    kernels: int = 1
    shape: dict = dataclasses.field(default_factory=dict)

    @property
    def memory_bytes(self) -> np.ndarray:
        """All device-memory traffic of one instance."""
        return (self.weight_bytes + self.act_in_bytes + self.act_out_bytes + self.kv_read_bytes
                + self.kv_write_bytes)


def make_op(name: str, kind: str, group: str, count: int, grid_shape: tuple, *, flops=0.0,
            vector_flops=0.0, weight_bytes=0.0, act_in_bytes=0.0, act_out_bytes=0.0,
            kv_read_bytes=0.0, kv_write_bytes=0.0, comm_bytes=0.0, compute_dtype="bf16",
            weight_dtype="", params=0.0, active_params=None, held_weight_bytes=0.0, kernels=1,
            shape=None) -> Op:
    """Build an :class:`Op`; every quantity is a float array broadcastable to ``grid_shape``."""

    def arr(x):
        # Kept at its own (broadcastable) shape: a weight size stays a scalar, so sweeps of a
        # million scenarios only pay for the quantities that really vary over the grid.
        a = np.asarray(x, dtype=float)
        np.broadcast_shapes(a.shape, grid_shape)  # fails loudly on a shape bug
        return a

    return Op(name=name, kind=kind, group=group, count=int(count), flops=arr(flops),
              vector_flops=arr(vector_flops), weight_bytes=arr(weight_bytes),
              act_in_bytes=arr(act_in_bytes), act_out_bytes=arr(act_out_bytes),
              kv_read_bytes=arr(kv_read_bytes), kv_write_bytes=arr(kv_write_bytes),
              comm_bytes=arr(comm_bytes), compute_dtype=compute_dtype, weight_dtype=weight_dtype,
              params=float(params), active_params=float(params if active_params is None else active_params),
              held_weight_bytes=float(held_weight_bytes), kernels=int(kernels), shape=shape or {})
