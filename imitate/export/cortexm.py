"""Build a C export for Cortex-M and run it under QEMU: actions, instructions, flash, stack.

Two targets: ``m0`` (ARMv6-M, no FPU: QEMU ``microbit``, an nRF51 with 256 KB flash and
16 KB RAM) and ``m4f`` (ARMv7E-M with single-precision FPU: QEMU ``mps2-an386``). The
image is bare metal: a vector table, a reset handler and semihosting calls (``bkpt
0xab``) written here, so that an "empty main" image is a few hundred bytes and the
growth a policy causes is visible; ``arm-none-eabi-gcc -Os -ffunction-sections
-fdata-sections -Wl,--gc-sections`` with newlib-nano and libgcc.

The runner reads states from a host file in chunks and writes the actions back
(semihosting file calls). Instructions per action come from SysTick under ``-icount``
(virtual time advances a fixed amount per instruction): each chunk's ticks with the
policy minus those of the same loop calling an empty function, converted with a
calibration loop of a known instruction count; :func:`trace_instructions` counts the same
difference exactly from QEMU's instruction trace (``-d exec,nochain -singlestep``) on a
few states, to check it. Hand-written because no Python package drives QEMU bare metal.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imitate.errors import ImitateError

SOFT_FLOAT = re.compile(r"__aeabi_[fd]\w*|__(add|sub|mul|div)[sd]f3|__(fix|float)\w*[sd]f\w*")
"""Names of libgcc soft-float routines (EABI and GNU spellings)."""


@dataclass(frozen=True)
class Target:
    """A Cortex-M core, the QEMU machine that runs it and its memory (bytes)."""

    name: str
    cflags: tuple[str, ...]
    machine: str
    flash: int
    ram: int
    fpu: bool


TARGETS = {
    "m0": Target(
        "m0",
        ("-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"),
        "microbit",
        256 << 10,
        16 << 10,
        False,
    ),
    "m4f": Target(
        "m4f",
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        "mps2-an386",
        4 << 20,
        4 << 20,
        True,
    ),
}
CFLAGS = ("-std=c99", "-Os", "-Wall", "-Wextra", "-Wconversion", "-pedantic", "-Werror")
SECTIONS = ("-ffunction-sections", "-fdata-sections")
CHUNK = 50
"""States per semihosting read in the runner."""

LINKER_SCRIPT = """MEMORY {{
  FLASH (rx) : ORIGIN = 0x00000000, LENGTH = {flash}
  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = {ram}
}}
ENTRY(reset_handler)
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) *(.text*) *(.rodata*) . = ALIGN(4); }} > FLASH
  .ARM.exidx : {{ *(.ARM.exidx*) }} > FLASH
  _sidata = LOADADDR(.data);
  .data : {{ _sdata = .; *(.data*) . = ALIGN(4); _edata = .; }} > RAM AT > FLASH
  .bss (NOLOAD) : {{ _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; }} > RAM
  _estack = ORIGIN(RAM) + LENGTH(RAM);
  end = _ebss;
}}
"""

STARTUP = r"""#include <stdint.h>
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
int sh_call(int op, const void *arg);
int sh_call(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
void sh_exit(int code);
void sh_exit(int code) {
    const uint32_t block[2] = {0x20026u, (uint32_t)code}; /* ADP_Stopped_ApplicationExit */
    (void)sh_call(0x20, block);
    for (;;) {}
}
void reset_handler(void);
void reset_handler(void) {
    volatile uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: enable CP10/CP11 */
    __asm__ volatile("dsb\n isb");
#endif
    sh_exit(main());
}
static void fault(void) { sh_exit(99); }
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_estack, reset_handler, fault, fault, fault, fault, fault,
    0, 0, 0, 0, fault, fault, 0, fault, fault};
"""

SIZE_MAIN = r"""#include "{p}.h"
volatile float sink_obs[{P}_OBS_DIM];
volatile int sink_action;
int main(void) {{
#ifndef EMPTY
    float obs[{P}_OBS_DIM];
    {p}_action_t action[{P}_ACTION_DIM];
#ifdef GATE
    {p}_gate_t anchor[{P}_N_OUTPUTS];
    {p}_gate_reset(anchor);
#endif
    for (int k = 0; k < {P}_OBS_DIM; ++k) obs[k] = sink_obs[k];
#ifdef GATE
    {p}_act_gated(obs, {P}_GATE_THRESHOLD(0.1), anchor, action);
#else
    {p}_act(obs, action);
#endif
    sink_action = (int)action[0];
#else
    (void)sink_obs[0]; /* the empty image keeps the same sinks (no float conversion) */
    sink_action = 1;
#endif
    return 0;
}}
"""
"""An image that calls ``<prefix>_act`` once (``-DGATE``: the gate; ``-DEMPTY``: nothing)."""

RUN_MAIN = r"""#include <stdint.h>
#include "{p}.h"
int sh_call(int op, const void *arg);
#define CHUNK {chunk}
#define SYST ((volatile uint32_t *)0xE000E010u)
static float obs[CHUNK * {P}_OBS_DIM];
static {p}_action_t actions[CHUNK * {P}_ACTION_DIM];
static uint32_t ticks[3];
typedef void (*act_fn)(const float *, {p}_action_t *);
static void noop(const float *o, {p}_action_t *a) {{ (void)o; (void)a; }}
{extra}
static uint32_t run(act_fn volatile *fn, int n) {{
    uint32_t start, stop;
    SYST[2] = 0u;
    start = SYST[2];
    for (int i = 0; i < n; ++i) (*fn)(obs + i * {P}_OBS_DIM, actions + i * {P}_ACTION_DIM);
    stop = SYST[2];
    return (start - stop) & 0xFFFFFFu;
}}
static uint32_t calibrate(void) {{ /* 2 * 20000 instructions in the loop */
    uint32_t start, stop, n = 20000u;
    SYST[2] = 0u;
    start = SYST[2];
    __asm__ volatile(".syntax unified\n 1: subs %0, %0, #1\n bne 1b" : "+l"(n) :: "cc");
    stop = SYST[2];
    return (start - stop) & 0xFFFFFFu;
}}
static int sh_open(const char *name, int mode) {{
    uint32_t block[3];
    int n = 0;
    while (name[n]) ++n;
    block[0] = (uint32_t)(uintptr_t)name; block[1] = (uint32_t)mode; block[2] = (uint32_t)n;
    return sh_call(0x01, block);
}}
static int sh_io(int op, int fd, void *buffer, int bytes) {{
    uint32_t block[3] = {{(uint32_t)fd, (uint32_t)(uintptr_t)buffer, (uint32_t)bytes}};
    return sh_call(op, block);
}}
int main(void) {{
    act_fn volatile fn = {fn}, empty = noop;
    {setup}
    int in = sh_open("{states}", 1), out = sh_open("{actions}", 5), total = 0;
    if (in < 0 || out < 0) return 2;
    SYST[1] = 0xFFFFFFu; SYST[2] = 0u; SYST[0] = 5u; /* SysTick: processor clock, no IRQ */
    for (;;) {{
        int left = sh_io(0x06, in, obs, (int)sizeof(obs));
        int n = (int)((sizeof(obs) - (unsigned)left) / (sizeof(float) * {P}_OBS_DIM));
        if (n <= 0) break;
        ticks[0] += run(&empty, n);
        ticks[1] += run(&fn, n);
        ticks[2] += calibrate();
        sh_io(0x05, out, actions, (int)((unsigned)(n * {P}_ACTION_DIM) * sizeof({p}_action_t)));
        total += n;
    }}
    sh_io(0x05, out, ticks, (int)sizeof(ticks));
    sh_call(0x02, &out);
    return total > 0 ? 0 : 3;
}}
"""


def toolchain() -> bool:
    """True when ``arm-none-eabi-gcc`` and ``qemu-system-arm`` are on PATH."""
    return (
        shutil.which("arm-none-eabi-gcc") is not None
        and shutil.which("qemu-system-arm") is not None
    )


def _run(command: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, check=False, timeout=timeout
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()[:800]
        raise ImitateError(f"{command[0]} failed ({result.returncode}): {detail}")
    return result.stdout


def _prefix(export_dir: Path) -> str:
    headers = sorted(export_dir.glob("*.h"))
    if len(headers) != 1:
        raise ImitateError(f"{export_dir}: expected one exported header, found {len(headers)}")
    return headers[0].stem


def build(
    export_dir: Path, target: Target, main_source: str, out: Path, extra: tuple[str, ...] = ()
) -> Path:
    """Link ``main_source`` with the export in ``export_dir`` into ``out`` (ELF) for ``target``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    p = _prefix(export_dir)
    work = out.parent
    (work / "startup.c").write_text(STARTUP)
    (work / f"{out.stem}_main.c").write_text(main_source)
    (work / "link.ld").write_text(LINKER_SCRIPT.format(flash=target.flash, ram=target.ram))
    command = [
        "arm-none-eabi-gcc", *target.cflags, *CFLAGS, *SECTIONS, *extra, f"-I{export_dir}",
        "-fstack-usage", "-nostartfiles", "--specs=nano.specs", "-T", str(work / "link.ld"),
        "-Wl,--gc-sections", str(work / "startup.c"), str(work / f"{out.stem}_main.c"),
        str(export_dir / f"{p}.c"), "-o", str(out), "-lm", "-lc", "-lgcc",
    ]  # fmt: skip
    _run(command, cwd=work)
    return out


def section_sizes(elf: Path) -> dict[str, int]:
    """``text``, ``data``, ``bss`` of a linked image (``arm-none-eabi-size``)."""
    fields = _run(["arm-none-eabi-size", str(elf)]).splitlines()[1].split()
    return {"text": int(fields[0]), "data": int(fields[1]), "bss": int(fields[2])}


def symbols(elf: Path) -> dict[str, int]:
    """Sizes of the image's symbols with a size (functions and tables), by name."""
    sizes: dict[str, int] = {}
    for line in _run(["arm-none-eabi-nm", "--size-sort", "-S", str(elf)]).splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = sizes.get(parts[3], 0) + int(parts[1], 16)
    return sizes


def soft_float_symbols(elf: Path) -> list[str]:
    """Soft-float routines linked into the image (none: no float operation anywhere)."""
    names = _run(["arm-none-eabi-nm", str(elf)]).split()
    return sorted({n for n in names if SOFT_FLOAT.fullmatch(n)})


ACT_CHAIN = ("act", "act_q", "outputs_q", "dense", "requant", "quantize_obs", "quantize1", "logits")
"""The functions ``<prefix>_act`` may call (float32: logits and dense)."""


def stack_usage(work: Path, prefix: str) -> int:
    """Sum of ``-fstack-usage`` over the functions of ``<prefix>_act``'s call tree (an upper
    bound on its deepest chain; libgcc helpers not included)."""
    names = {f"{prefix}_{name}" for name in ACT_CHAIN}
    total = 0
    for su in work.glob(f"*{prefix}.su"):
        for line in su.read_text().splitlines():
            location, size, _ = line.rsplit("\t", 2)
            if location.rsplit(":", 1)[-1] in names:
                total += int(size)
    return total


def qemu_command(target: Target, elf: Path, icount: bool = True) -> list[str]:
    command = ["qemu-system-arm", "-machine", target.machine, "-nographic", "-monitor", "none"]
    command += ["-serial", "null", "-semihosting-config", "enable=on,target=native"]
    if icount:
        command += ["-icount", "shift=6,align=off,sleep=off"]
    return [*command, "-kernel", str(elf)]


@dataclass(frozen=True)
class Run:
    """Actions ``[N, action_dim]`` of a QEMU run and its instructions per action."""

    actions: np.ndarray
    instructions_per_action: float


GATED = """static {p}_gate_t anchor[{P}_N_OUTPUTS];
__attribute__((used)) static void gated(const float *o, {p}_action_t *a) {{
    {p}_act_gated(o, {P}_GATE_THRESHOLD({threshold}), anchor, a);
}}
"""


def runner_source(p: str, gate: float | None = None) -> str:
    """The QEMU runner's main for prefix ``p`` (``gate``: the JS gate's threshold, one anchor
    carried along the states in order)."""
    fields = {"p": p, "P": p.upper(), "chunk": str(CHUNK), "states": "states.bin"}
    fields |= {"actions": "actions.bin", "fn": f"{p}_act", "extra": "", "setup": ""}
    if gate is not None:
        fields |= {"fn": "gated", "setup": f"{p}_gate_reset(anchor);"}
        fields["extra"] = GATED.format(p=p, P=p.upper(), threshold=repr(float(gate)))
    return RUN_MAIN.format(**fields)


def run_states(
    export_dir: Path,
    target: Target,
    states: np.ndarray,
    work: Path,
    gate: float | None = None,
    extra: tuple[str, ...] = (),
) -> Run:
    """Run the export's ``<prefix>_act`` (``gate``: ``<prefix>_act_gated`` with that
    threshold) on ``states [N, obs_dim]`` under QEMU."""
    p = _prefix(export_dir)
    header = (export_dir / f"{p}.h").read_text()
    action_dim = int(re.search(rf"#define {p.upper()}_ACTION_DIM (\d+)", header).group(1))  # type: ignore[union-attr]
    is_float = f"typedef float {p}_action_t" in header
    work.mkdir(parents=True, exist_ok=True)
    (work / "states.bin").write_bytes(np.ascontiguousarray(states, dtype="<f4").tobytes())
    elf = build(export_dir, target, runner_source(p, gate), work / "run.elf", extra)
    _run(qemu_command(target, elf), cwd=work, timeout=1800)
    raw = (work / "actions.bin").read_bytes()
    ticks = np.frombuffer(raw[-12:], dtype="<u4").astype(np.float64)
    dtype = "<f4" if is_float else "<i4"
    actions = np.frombuffer(raw[:-12], dtype=dtype).reshape(len(states), action_dim)
    chunks = -(-len(states) // CHUNK)
    per_tick = 2 * 20000 * chunks / ticks[2]  # instructions per SysTick tick
    return Run(actions.copy(), float((ticks[1] - ticks[0]) * per_tick / len(states)))


def trace_instructions(
    export_dir: Path, target: Target, states: np.ndarray, work: Path, gate: float | None = None
) -> float:
    """Instructions per action counted in QEMU's instruction trace (one line per
    instruction with ``-singlestep``): the runner with the policy minus an empty policy."""
    p = _prefix(export_dir)
    counts = []
    for name in ("empty", "policy"):
        run_dir = work / name
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "states.bin").write_bytes(np.ascontiguousarray(states, dtype="<f4").tobytes())
        source = runner_source(p, gate)
        if name == "empty":  # same runner, the policy replaced by the no-op
            name_of_fn = "gated" if gate is not None else f"{p}_act"
            source = source.replace(f"fn = {name_of_fn},", "fn = noop,")
        elf = build(export_dir, target, source, run_dir / "trace.elf")
        log = run_dir / "trace.log"
        command = qemu_command(target, elf, icount=False)
        command[-2:-2] = ["-singlestep", "-d", "exec,nochain", "-D", str(log)]
        _run(command, cwd=run_dir, timeout=1800)
        with log.open("rb") as f:
            counts.append(
                sum(chunk.count(b"Trace ") for chunk in iter(lambda: f.read(1 << 20), b""))
            )
        log.unlink()
    return (counts[1] - counts[0]) / len(states)
