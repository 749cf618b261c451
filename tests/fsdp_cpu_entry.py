"""``creamviz train`` with Accelerate's FSDP path allowed on CPU processes (for tests).

Accelerate 1.x applies an FSDP config only to GPU-type processes: on CPU it silently falls back to
plain multi-process data parallel (``DistributedType.MULTI_CPU``), although PyTorch's FSDP2
(``fully_shard``) itself runs on CPU with the gloo backend. This entry point turns a MULTI_CPU
state into FSDP when ``accelerate launch --config_file configs/fsdp.yaml`` asked for it, then runs
``creamviz train`` unchanged, so the CPU test exercises the same Trainer/FSDP code a GPU run does.
"""

import os
import sys

import accelerate.state as state
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

_init = state.AcceleratorState.__init__


def _init_allowing_cpu_fsdp(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    asked = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if asked and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin or FullyShardedDataParallelPlugin()  # reads the FSDP_* variables


state.AcceleratorState.__init__ = _init_allowing_cpu_fsdp

if __name__ == "__main__":
    from creamviz.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
