"""The C exports on Cortex-M under QEMU: flash, RAM, stack, instructions per action, parity.

Students distilled from the zoo experts (CartPole: hidden (8,), LunarLander: (16,)), with
tanh, ReLU and hard-tanh hidden units. Each student is exported as float32, as int8
(post-training quantisation, calibrated on 10 of its own episodes; int8 hidden
activations, int16 observations: the default), as int8 with int16 hidden activations
("int8 a16") and as int8 of its QAT fine-tune (weights on the int8 grid); the float32
export also with its JS gate. Each
export is built with ``arm-none-eabi-gcc -Os`` for a Cortex-M0 (QEMU ``microbit``) and a
Cortex-M4F (QEMU ``mps2-an386``) and run on 10,000 recorded states (the float student's
own rollouts) under semihosting (:mod:`imitate.export.cortexm`).

Per row: flash of the policy alone (the sizes of its symbols in the linked image, code and
tables) and the growth of the whole image over an empty ``main`` (text, data, bss: libgcc
soft-float and libm included when they are pulled in), the soft-float routines linked, the
stack of the act call tree (``-fstack-usage``), instructions per action (SysTick under
``-icount``, and counted in QEMU's instruction trace on 10 states), action parity with the
Python policy (gated rows: with the host build of the same gate, one anchor along the
states), and for int8 the return of the host build vs the float student (20 episodes).

    python -m benchmarks.bench_embedded [--states 10000] [--envs CartPole-v1]
    make bench-embedded    # installs the toolchain and QEMU first when missing
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.zoo import load_zoo_teacher
from benchmarks.common import emit
from imitate import collect, evaluate
from imitate.data import Dataset
from imitate.distill import DistillConfig, distill
from imitate.export import cortexm, export_policy
from imitate.export.c import CPolicy
from imitate.export.int8 import (
    GateEpisodes,
    GateRefused,
    WidthChoice,
    choose_bits,
    quantization_aware_finetune,
)
from imitate.policy import JSGatedPolicy, MLPPolicy, PolicyConfig

STUDENTS = {"CartPole-v1": 8, "LunarLander-v3": 16}
ACTIVATIONS = ("tanh", "relu", "hardtanh")
GATE = 0.1
ISSUE_BASELINE = {  # today's exports per the issue (tanh students, instructions per action)
    "CartPole-v1": {"m0 float32": 40_978, "m4f float32": 1_178, "m4f int8 (old)": 1_564},
    "LunarLander-v3": {"m4f float32": 2_865, "m4f int8 (old)": 3_612},
}


def sizes(export_dir: Path, target: cortexm.Target, work: Path, gate: bool) -> dict[str, Any]:
    """Flash and RAM of an image calling the policy once vs an empty one."""
    p = export_dir.glob("*.h").__next__().stem
    source = cortexm.SIZE_MAIN.format(p=p, P=p.upper())
    extra = ("-DGATE",) if gate else ()
    image = cortexm.build(export_dir, target, source, work / "size.elf", extra)
    empty = cortexm.build(export_dir, target, source, work / "empty" / "empty.elf", ("-DEMPTY",))
    full, base = cortexm.section_sizes(image), cortexm.section_sizes(empty)
    symbols = cortexm.symbols(image)
    ours = {k: v for k, v in symbols.items() if k.startswith(f"{p}_")}
    pulled = sorted(set(symbols) - set(cortexm.symbols(empty)) - set(ours) - {"main"})
    return {
        "policy_flash": sum(ours.values()),
        "image": full,
        "growth": {k: full[k] - base[k] for k in full},
        "library_symbols": pulled,
        "soft_float": cortexm.soft_float_symbols(image),
        "stack": cortexm.stack_usage(work, p),
    }


def measure(
    policy: MLPPolicy,
    reference: np.ndarray,
    states: np.ndarray,
    calibration: np.ndarray,
    variant: str,
    root: Path,
    choice: WidthChoice | None = None,
) -> list[dict[str, Any]]:
    """QEMU rows of one export; ``choice``: the width ``--activation-bits auto`` chose
    (variants with ``auto``), else 16 for ``a16`` variants and 8 for the others."""
    int8, gate = variant.startswith("int8"), variant.endswith("gated")
    bits = choice.bits if choice is not None else 16 if "a16" in variant else 8
    export_dir = root / variant.replace(" ", "_") / "export"
    export_policy(
        policy, "c", export_dir, int8=int8, calibration=calibration, bits=bits, choice=choice
    )
    host = CPolicy(export_dir / "policy.c")
    gate_extra: dict[str, Any] = {}
    if gate:
        reference = replay_gate(host.gated(GATE), states)
        python_gate = replay_gate(JSGatedPolicy.wrap(policy, GATE), states)
        gate_extra["parity_with_python_gate_along_states"] = float(
            (reference == python_gate).mean()
        )
    header = (export_dir / "policy.h").read_text()
    stated_stack = int(header.split("#define POLICY_STACK_BYTES ")[1].split()[0])
    rows = []
    for name, target in cortexm.TARGETS.items():
        work = export_dir.parent / name
        threshold = GATE if gate else None
        start = time.perf_counter()
        run = cortexm.run_states(export_dir, target, states, work / "run", threshold)
        seconds = time.perf_counter() - start
        traced = cortexm.trace_instructions(
            export_dir, target, states[:10], work / "trace", threshold
        )
        row = {
            "variant": variant,
            "target": name,
            "activation_bits": bits if int8 else None,
            **({"int8_width": choice.as_dict()} if choice is not None else {}),
            "instructions_per_action": round(run.instructions_per_action, 1),
            "trace_instructions_per_action": round(traced, 1),
            "parity": float((run.actions[:, 0] == reference).mean()),
            "parity_with_host_build": float(
                (run.actions[:, 0] == (host.act(states) if not gate else reference)).mean()
            ),
            "qemu_seconds": round(seconds, 1),
            "stated_stack": stated_stack,
            **gate_extra,
            **sizes(export_dir, target, work / "size", gate),
        }
        rows.append(row)
        print(
            f"  {variant:14s} {name:4s} {row['instructions_per_action']:9.1f} instr "
            f"(trace {traced:.1f}), policy {row['policy_flash']} B, growth "
            f"{row['growth']['text'] + row['growth']['data']} B, stack {row['stack']} B, "
            f"parity {row['parity']:.4f}",
            flush=True,
        )
    return rows


def calibration_gate(policy: MLPPolicy, env_id: str, episodes: int = 30) -> GateEpisodes:
    """The Python gate's calibration episodes that ``imitate export --int8 --js-gate`` checks
    the int8 gate along (its default 30; reset seeds 110..., after the calibration
    rollouts' 100-109)."""
    data = collect(JSGatedPolicy.wrap(policy, GATE), env_id, episodes, seed=110)
    return GateEpisodes(data.obs, data.actions, data.episode_starts, GATE)


def replay_gate(gated: Any, states: np.ndarray) -> np.ndarray:
    """Actions of a gate (a RecurrentPolicy) along ``states`` in order, one anchor carried
    through (as the QEMU runner does)."""
    state, actions = gated.initial_state(1), []
    for row in states:
        action, state = gated.step(row[None], state)
        actions.append(int(np.asarray(action).reshape(-1)[0]))
    return np.array(actions)


def gate_episodes(
    policy: MLPPolicy, host: CPolicy, env_id: str, episodes: int = 10
) -> dict[str, float]:
    """Parity of the export's gate with the Python gate along the Python gate's own episodes
    (``episodes`` of them, seed 7, the anchor reset at each start; and 30 more from seed
    1000), and the two returns."""
    python_gate = JSGatedPolicy.wrap(policy, GATE)
    data = collect(python_gate, env_id, episodes, seed=7)
    more = collect(python_gate, env_id, 30, seed=1000)
    gated = host.gated(GATE)
    return {
        "gate_parity_along_python_gate_episodes": float(
            (replay_episodes(gated, data) == data.actions).mean()
        ),
        "gate_parity_along_30_more_python_gate_episodes": float(
            (replay_episodes(gated, more) == more.actions).mean()
        ),
        "gate_episode_states": len(data.actions),
        "python_gate_return": evaluate(python_gate, env_id, 20, 10_000).mean_return,
        "export_gate_return": evaluate(gated, env_id, 20, 10_000).mean_return,
    }


def replay_episodes(gated: Any, data: Dataset) -> np.ndarray:
    """Actions of a gate along a dataset's episodes, its anchor reset at each start."""
    starts = set(data.episode_starts.tolist())
    state, actions = gated.initial_state(1), []
    for t, row in enumerate(data.obs):
        if t in starts:
            state = gated.initial_state(1)
        action, state = gated.step(row[None], state)
        actions.append(int(np.asarray(action).reshape(-1)[0]))
    return np.array(actions)


EMLEARN_HEADER = """#include <stdint.h>
#define EMLW_OBS_DIM {obs_dim}
#define EMLW_ACTION_DIM 1
#define EMLW_N_OUTPUTS {n_outputs}
typedef int emlw_action_t;
void emlw_act(const float *obs, emlw_action_t *action);
"""
EMLEARN_WRAPPER = """
/* the runner's API around emlearn's eml_net_predict (normalisation folded into layer 0) */
#include "emlw.h"
void emlw_act(const float *obs, emlw_action_t *action) {{
    action[0] = (emlw_action_t)emlw_net_predict(obs, {obs_dim});
}}
"""


def emlearn_export(policy: MLPPolicy, folder: Path) -> tuple[str, ...] | None:
    """The same float MLP through emlearn's ``eml_net`` (weights copied in, the
    observation normalisation folded into the first layer, an identity output layer and
    argmax), as ``emlw.h``/``emlw.c``; the extra compiler flags it needs. None: emlearn
    is not installed, or the activation is not one of emlearn's."""
    settings = np.geterr()
    try:
        import emlearn
        from emlearn.net import c_generate_net_loadable
    except ImportError:
        return None
    finally:  # importing emlearn sets numpy to raise on underflow, which Adam's moments hit
        np.seterr(**settings)
    if policy.config.activation not in ("relu", "tanh"):
        return None
    layers = [(w, b) for kind, w, b in policy.numpy_snapshot().layers.ops if kind == "linear"]
    inv_std = 1.0 / policy.obs_std.numpy()
    first_w, first_b = layers[0]
    layers[0] = (
        first_w * inv_std[:, None],
        first_b - (policy.obs_mean.numpy() * inv_std) @ first_w,
    )
    activations = [policy.config.activation] * (len(layers) - 1) + ["identity"]
    code = c_generate_net_loadable(
        activations,
        [w.astype(np.float32) for w, _ in layers],
        [b.astype(np.float32) for _, b in layers],
        "emlw_net",
    )
    folder.mkdir(parents=True, exist_ok=True)
    fields = {"obs_dim": policy.obs_dim, "n_outputs": policy.head.n_outputs}
    (folder / "emlw.h").write_text(EMLEARN_HEADER.format(**fields))
    (folder / "emlw.c").write_text(code + EMLEARN_WRAPPER.format(**fields))
    return (f"-I{Path(emlearn.__file__).parent}", "-Wno-error", "-Wno-conversion", "-Wno-pedantic")


def measure_emlearn(
    policy: MLPPolicy, reference: np.ndarray, states: np.ndarray, root: Path
) -> list[dict[str, Any]]:
    folder = root / "emlearn"
    flags = emlearn_export(policy, folder)
    if flags is None:
        return []
    rows: list[dict[str, Any]] = []
    for name, target in cortexm.TARGETS.items():
        work = root / "emlearn_runs" / name
        run = cortexm.run_states(folder, target, states, work / "run", extra=flags)
        source = cortexm.SIZE_MAIN.format(p="emlw", P="EMLW")
        image = cortexm.build(folder, target, source, work / "size.elf", flags)
        empty = cortexm.build(folder, target, source, work / "empty" / "e.elf", (*flags, "-DEMPTY"))
        full, base = cortexm.section_sizes(image), cortexm.section_sizes(empty)
        symbols = cortexm.symbols(image)
        rows.append(
            {
                "variant": "emlearn float32",
                "target": name,
                "instructions_per_action": round(run.instructions_per_action, 1),
                "parity": float((run.actions[:, 0] == reference).mean()),
                "policy_flash": sum(v for k, v in symbols.items() if k.startswith("eml")),
                "image": full,
                "growth": {k: full[k] - base[k] for k in full},
                "soft_float": cortexm.soft_float_symbols(image),
                "stack": cortexm.stack_usage(work, "emlw"),
            }
        )
        print(
            f"  emlearn float32 {name:4s} {run.instructions_per_action:9.1f} instr, "
            f"growth {rows[-1]['growth']['text'] + rows[-1]['growth']['data']} B, "
            f"parity {rows[-1]['parity']:.4f}",
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=10_000)
    parser.add_argument("--envs", nargs="+", default=list(STUDENTS))
    parser.add_argument("--activations", nargs="+", default=list(ACTIVATIONS))
    parser.add_argument("--no-emlearn", action="store_true", help="skip the emlearn rows")
    args = parser.parse_args(argv)
    if not cortexm.toolchain():
        raise SystemExit("needs arm-none-eabi-gcc and qemu-system-arm: run `make bench-embedded`")
    torch.set_num_threads(1)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in args.envs:
            teacher = load_zoo_teacher(env_id)
            hidden = STUDENTS[env_id]
            for activation in args.activations:
                config = DistillConfig(student=PolicyConfig((hidden,), activation))
                student, _ = distill(teacher, env_id, config)
                states = collect(student, env_id, 60, seed=1, max_steps=args.states).obs
                states = states[: args.states]
                calibration = collect(student, env_id, 10, seed=100).obs
                qat = quantization_aware_finetune(student, calibration)
                qat16 = quantization_aware_finetune(student, calibration, bits=16)
                print(f"{env_id} {activation} ({len(states)} states)", flush=True)
                root = Path(tmp) / env_id / activation
                float_return = evaluate(student, env_id, 20, 10_000).mean_return
                qat_return = evaluate(qat, env_id, 20, 10_000).mean_return
                base = {"env": env_id, "hidden": hidden, "activation": activation}
                choices = {
                    "int8 auto": choose_bits(student, calibration),
                    "int8 qat auto": choose_bits(qat, calibration),
                }
                for variant, policy in (
                    ("int8 auto gated", student),
                    ("int8 qat16 auto gated", qat16),
                ):
                    try:
                        choices[variant] = choose_bits(
                            policy, calibration, gate=calibration_gate(policy, env_id)
                        )
                    except GateRefused as refusal:
                        print(f"  {variant}: refused: {refusal}", flush=True)
                        results.append({**base, "variant": variant, "refused": str(refusal)})
                for variant in choices:
                    print(f"  {variant}: {choices[variant].reason}", flush=True)
                for variant, policy in (
                    ("float32", student),
                    ("float32 gated", student),
                    ("int8 auto", student),
                    ("int8 auto gated", student),
                    ("int8", student),
                    ("int8 a16", student),
                    ("int8 qat auto", qat),
                    ("int8 qat16 auto gated", qat16),
                ):
                    if "auto" in variant and variant not in choices:
                        continue  # the gate refused (recorded above)
                    rows = measure(
                        policy, policy.act(states), states, calibration, variant, root,
                        choices.get(variant),
                    )  # fmt: skip
                    extra: dict[str, Any] = {"float_student_return": float_return}
                    host = CPolicy(root / variant.replace(" ", "_") / "export" / "policy.c")
                    if variant.endswith("gated"):
                        extra |= gate_episodes(policy, host, env_id)
                        if policy is not student:  # vs the float student's own gate
                            python_gate = JSGatedPolicy.wrap(student, GATE)
                            data = collect(python_gate, env_id, 10, seed=7)
                            extra["gate_parity_vs_float_student_gate"] = float(
                                (replay_episodes(host.gated(GATE), data) == data.actions).mean()
                            )
                    elif variant.startswith("int8"):
                        extra["int8_return"] = evaluate(host, env_id, 20, 10_000).mean_return
                        extra["qat_student_return"] = qat_return
                        extra["qat_agreement_with_float_student"] = float(
                            (qat.act(states) == student.act(states)).mean()
                        )
                        extra["parity_with_float_student"] = float(
                            (host.act(states) == student.act(states)).mean()
                        )
                    results += [{**base, **row, **extra} for row in rows]
                if not args.no_emlearn:
                    rows = measure_emlearn(student, student.act(states), states, root)
                    results += [{**base, **row} for row in rows]
    emit(
        "bench_embedded",
        {
            "states": args.states,
            "toolchain": "arm-none-eabi-gcc -Os, function/data sections, --gc-sections, nano",
            "targets": {k: v.machine for k, v in cortexm.TARGETS.items()},
            "gate_threshold": GATE,
            "issue_baseline": ISSUE_BASELINE,
            "rows": results,
        },
    )
    print(table(results))


def table(rows: list[dict[str, Any]]) -> str:
    """The README's markdown table."""
    lines = [
        "| student | export | core | instructions / action | policy flash (B) "
        "| image growth text+data (B) | RAM (data+bss, B) | stack (B) | parity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "refused" in r:  # the gate refused by the export: no build
            name = f"{r['env'].split('-')[0]} {STUDENTS[r['env']]} {r['activation']}"
            lines.append(f"| {name} | {r['variant']} | refused: {r['refused']} |")
            continue
        growth = r["growth"]
        lines.append(
            f"| {r['env'].split('-')[0]} {r['hidden']} {r['activation']} | {r['variant']} | "
            f"{r['target']} | {r['instructions_per_action']:,.0f} | {r['policy_flash']:,} | "
            f"{growth['text'] + growth['data']:,} | {growth['data'] + growth['bss']} | "
            f"{r['stack']} | {100 * r['parity']:.2f} % |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
