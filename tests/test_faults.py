"""Fault injection (issue 16): hostile files, full and read-only disks, bad values, signals.

Each test names the item of issue 16 it covers; each fails on the code before the fix.
Full disks are real: a small tmpfs mounted for the test (root only; this machine kind's CI
runs as root). Without root those tests skip, and the monkeypatched ENOSPC test still
covers the one-error-path contract. Signals are sent to real subprocesses.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from cli_helpers import run_cli as run

from agents.heuristics import CartPoleExpert
from imitate import Dataset, collect
from imitate.bc import BCConfig, train_bc
from imitate.cli import main
from imitate.configs import OptimConfig
from imitate.data import load_dataset
from imitate.errors import CheckpointError, DatasetError, ImitateError, UnsupportedSpaceError
from imitate.policy import MLPPolicy, PolicyConfig, load_checkpoint, load_policy, save_policy

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "agents" / "pretrained"


def one_error_line(err: str) -> str:
    """The stderr of a failed command: exactly one line ``imitate: error: ...``."""
    lines = [line for line in err.splitlines() if not line.startswith("imitate: warning:")]
    assert len(lines) == 1 and lines[0].startswith("imitate: error: "), err
    assert "Traceback" not in err
    return lines[0]


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (hidden ones too) -> sha256 of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    """Temporary files or folders imitate left in ``parent``."""
    return sorted(p.name for p in parent.iterdir() if ".tmp" in p.name or p.name.endswith(".lock"))


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "d.npz"
    collect(CartPoleExpert(), "CartPole-v1", n_episodes=2, seed=0, source="heuristic").save(path)
    return path


@pytest.fixture(scope="module")
def small_policy(tmp_path_factory: pytest.TempPathFactory, demos_file: Path) -> Path:
    policy, _ = train_bc(load_dataset(demos_file), BCConfig(optim=OptimConfig(max_steps=20)))
    return save_policy(
        policy, tmp_path_factory.mktemp("p") / "policy.pt", {"env_id": "CartPole-v1"}
    )


# --- a real small disk -------------------------------------------------------------------


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fill(self, leave: int = 0) -> None:
        """Take all free space but ``leave`` bytes."""
        free = os.statvfs(self.path).f_bavail * os.statvfs(self.path).f_frsize
        with open(self.path / "filler", "wb") as f:
            f.write(b"\0" * max(free - leave, 0))

    def free(self) -> None:
        (self.path / "filler").unlink(missing_ok=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 2 MB tmpfs (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root to mount a tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield SmallDisk(mount)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# --- items 1, 2: no code the user did not choose -----------------------------------------


def _evil_zip(path: Path, marker: Path) -> Path:
    """An SB3-shaped zip whose 'data' carries a pickle that creates ``marker`` when loaded."""

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(marker), "w"))

    data = {"policy_class": {":type:": "<class 'abc.ABCMeta'>", ":serialized:": ""}}
    data["policy_class"][":serialized:"] = base64.b64encode(pickle.dumps(Payload())).decode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr("_stable_baselines3_version", "2.0.0")
    return path


def test_item1_a_checkpoint_never_makes_eval_load_the_file_it_records(
    tmp_path: Path, demos_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    evil = _evil_zip(tmp_path / "evil.zip", marker)
    policy, _ = train_bc(load_dataset(demos_file), BCConfig(optim=OptimConfig(max_steps=20)))
    checkpoint = save_policy(
        policy, tmp_path / "p.pt", {"env_id": "CartPole-v1", "expert": str(evil)}
    )
    code, out, err = run(["eval", "--policy", str(checkpoint), "--episodes", "1", "--json"], capsys)
    assert not marker.exists(), "the recorded zip was unpickled"
    assert code == 0, err
    assert json.loads(out)["calibration"].get("expert") != str(evil)


def test_item2_safe_loads_a_user_zip_without_unpickling_and_help_states_the_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    evil = _evil_zip(tmp_path / "evil.zip", marker)
    args = ["collect", "--expert", str(evil), "--safe", "--episodes", "1"]
    code, _, err = run([*args, "--out", str(tmp_path / "d.npz")], capsys)
    assert code == 2 and not marker.exists()
    assert "policy.pth" in one_error_line(err)
    for argv in (["--help"], ["collect", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "pickle" in text and "trust" in text and "--safe" in text
    readme = (ROOT / "README.md").read_text()
    assert "SB3 zips are pickles" in readme


def test_item2_the_safe_import_of_a_real_zip_equals_sb3(tmp_path: Path) -> None:
    from agents.sb3_safe import load_safe_for_env
    from agents.zoo import load_sb3

    path = PRETRAINED / "LunarLander-v3-ppo.zip"
    safe = load_safe_for_env(path, "LunarLander-v3")
    model = load_sb3(path)
    states = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    expected = np.array([model.predict(s, deterministic=True)[0] for s in states])
    np.testing.assert_array_equal(safe.act(states), expected)


def test_shipped_experts_load_without_any_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    import cloudpickle

    from agents.registry import resolve_expert
    from agents.zoo import load_zoo_teacher, read_manifest

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unpickling reached")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(cloudpickle, "loads", refuse)
    manifest = read_manifest()
    assert manifest
    for env_id in manifest:
        obs = gym.make(env_id).observation_space.sample()[None]
        expert = resolve_expert("zoo", env_id)  # the cached numpy actor (safetensors)
        assert np.asarray(expert.act(obs)).shape[0] == 1
        rebuilt = load_zoo_teacher(env_id, cached=False)  # no cache: the safe import
        assert np.asarray(rebuilt.act(obs)).shape[0] == 1
    with pytest.raises(ImitateError, match="unpickling reached"):  # the patch does bite
        load_zoo_teacher("CartPole-v1", cached=False, safe=False)


def test_the_safe_import_refuses_what_it_cannot_rebuild_in_one_line(tmp_path: Path) -> None:
    from agents.sb3_safe import SafeLoadError, load_safe_for_env

    source = PRETRAINED / "CartPole-v1-ppo.zip"
    with pytest.raises(SafeLoadError, match="trained for observations"):
        load_safe_for_env(source, "Acrobot-v1")
    with zipfile.ZipFile(source) as archive:
        state = torch.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)
        data = archive.read("data")
    state["features_extractor.cnn.0.weight"] = torch.zeros(2, 2)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    cnn = tmp_path / "cnn.zip"
    with zipfile.ZipFile(cnn, "w") as archive:
        archive.writestr("data", data)
        archive.writestr("policy.pth", buffer.getvalue())
    with pytest.raises(SafeLoadError, match="features extractor") as info:
        load_safe_for_env(cnn, "CartPole-v1")
    assert "\n" not in str(info.value)


# --- item 3: whole artefact sets under a full disk ----------------------------------------


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code, _, err = run(args, capsys)
    return code, err


def test_item3_bc_on_a_full_disk_leaves_the_old_set_byte_for_byte(
    small_disk: SmallDisk, demos_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = small_disk.path / "bc"
    base = ["bc", "--data", str(demos_file), "--out", str(out), "--eval-episodes", "0"]
    assert _cli([*base, "--max-steps", "30"], capsys)[0] == 0
    before = tree_digest(out)
    small_disk.fill(leave=8192)
    code, err = _cli([*base, "--max-steps", "30", "--seed", "1"], capsys)
    assert code == 2 and "No space left on device" in one_error_line(err)
    assert tree_digest(out) == before
    assert leftovers(small_disk.path) == []
    small_disk.free()
    assert _cli([*base, "--max-steps", "30", "--seed", "1"], capsys)[0] == 0
    assert tree_digest(out) != before


@pytest.mark.parametrize("fmt", ["c", "onnx", "torchscript", "numpy"])
def test_item3_export_over_another_envs_export_is_all_old_or_all_new(
    fmt: str, small_disk: SmallDisk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cart = collect(CartPoleExpert(), "CartPole-v1", n_episodes=1, seed=0)
    lander_space = gym.make("LunarLander-v3")
    policies = {}
    for name, obs_space, action_space in (
        ("cart", cart.meta.spaces()[0], cart.meta.spaces()[1]),
        ("lander", lander_space.observation_space, lander_space.action_space),
    ):
        policies[name] = save_policy(
            MLPPolicy(obs_space, action_space, PolicyConfig(hidden=(256, 256))),
            tmp_path / f"{name}.pt",
            {"env_id": name},
        )
    out = small_disk.path / "export"
    first = ["export", "--policy", str(policies["cart"]), "--format", fmt, "--out", str(out)]
    assert _cli(first, capsys)[0] == 0
    before = tree_digest(out)
    small_disk.fill(leave=4096 * 10)
    args = ["export", "--policy", str(policies["lander"]), "--format", fmt, "--out", str(out)]
    code, err = _cli(args, capsys)
    assert code == 2 and "No space left on device" in one_error_line(err)
    assert tree_digest(out) == before
    assert leftovers(small_disk.path) == []


def test_item3_dagger_sweep_distill_run_leave_old_or_nothing_on_a_full_disk(
    small_disk: SmallDisk, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    commands = {
        "dagger": ["dagger", "--rounds", "1", "--steps-per-round", "200", "--bc.max-steps", "30",
                   "--eval-episodes", "0"],
        "sweep": ["sweep", "--grid", "episodes=1", "--seeds", "0", "--eval-episodes", "1",
                  "--max-steps", "30"],
        "distill": ["distill", "--teacher", "zoo", "--eval-episodes", "1", "--mode", "offline"],
        "run": ["run", "--expert", "heuristic"],
    }  # fmt: skip

    def fake_pipeline(
        env_id: str, expert: object, name: str, config: object, out: Path, **kwargs: object
    ) -> dict:
        """run's own stages are tested elsewhere; here: the many files it writes."""
        policy, _ = train_bc(
            collect(CartPoleExpert(), env_id, 1, seed=0), BCConfig(optim=OptimConfig(max_steps=5))
        )
        for stage in ("bc_1", "dagger", "student"):
            save_policy(policy, out / stage / "policy.pt", {"env_id": env_id})
        (out / "report.md").write_text("# report\n" * 20_000)
        return {}

    def fast_distill(teacher: object, env_id: str, config: object, progress: bool = False):
        return train_bc(
            collect(teacher, env_id, 1, seed=0), BCConfig(optim=OptimConfig(max_steps=5))
        )[0], {}  # type: ignore[arg-type]

    # (the package's lazy names shadow the modules collect/dagger/distill: import the modules)
    monkeypatch.setattr(importlib.import_module("imitate.pipeline"), "run_pipeline", fake_pipeline)
    monkeypatch.setattr(importlib.import_module("imitate.distill"), "distill", fast_distill)
    before = {}
    for name, args in commands.items():  # an old set of each, written while there is room
        code, err = _cli([*args, "--out", str(small_disk.path / name)], capsys)
        assert code == 0, (name, err)
        before[name] = tree_digest(small_disk.path / name)
    small_disk.fill(leave=4096 * 6)
    for name, args in commands.items():
        for out in (small_disk.path / name, small_disk.path / f"new-{name}"):
            code, err = _cli([*args, "--out", str(out)], capsys)
            assert code == 2 and "No space left on device" in one_error_line(err), (name, err)
            if out.name == name:
                assert tree_digest(out) == before[name], name  # exactly the old set
            else:
                assert not out.exists(), name
            assert leftovers(small_disk.path) == [], name


def test_item3_two_writers_of_one_out_do_not_interleave(tmp_path: Path) -> None:
    from imitate.errors import OutputError
    from imitate.runs import artefact_dir

    out = tmp_path / "run"
    with artefact_dir(out, "bc") as first:
        (first.work / "policy.pt").write_text("first")
        with pytest.raises(OutputError, match="another imitate process"), artefact_dir(out, "bc"):
            pass
    assert (out / "policy.pt").read_text() == "first"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with (
        pytest.raises(OutputError, match="not written by imitate"),
        artefact_dir(tmp_path / "mine", "bc"),
    ):
        pass
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


# --- item 4: Minari on a full disk --------------------------------------------------------


def test_item4_minari_export_on_a_full_disk_is_one_line_and_leaves_nothing(
    small_disk: SmallDisk, demos_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("minari")
    root = small_disk.path / "minari"
    args = ["data", "export-minari", "--data", str(demos_file), "--root", str(root)]
    small_disk.fill(leave=4096 * 12)
    code, err = _cli([*args, "--dataset-id", "imitate/cart/full-v0"], capsys)
    assert code == 2 and "imitate/cart/full-v0" not in err and "MB free" in one_error_line(err)
    assert not (root / "imitate" / "cart" / "full-v0").exists()
    small_disk.free()
    assert _cli([*args, "--dataset-id", "imitate/cart/full-v0"], capsys)[0] == 0
    back = small_disk.path / "back.npz"
    imp = ["data", "import-minari", "--dataset-id", "imitate/cart/full-v0", "--root", str(root)]
    assert _cli([*imp, "--out", str(back)], capsys)[0] == 0
    assert len(load_dataset(back)) == len(load_dataset(demos_file))
    assert [p for p in root.iterdir() if p.name.startswith(".")] == []


def test_item4_minari_write_failure_mid_file_leaves_no_partial_dataset(
    small_disk: SmallDisk, demos_file: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    pytest.importorskip("minari")
    import imitate.minari_io as minari_io

    monkeypatch.setattr(minari_io, "_expected_bytes", lambda dataset: 0)  # skip the pre-check
    root = small_disk.path / "minari"
    small_disk.fill(leave=4096 * 12)
    args = ["data", "export-minari", "--data", str(demos_file), "--root", str(root)]
    code, err = _cli([*args, "--dataset-id", "imitate/cart/mid-v0"], capsys)
    assert code == 2, err
    one_error_line(err)
    assert not (root / "imitate" / "cart" / "mid-v0").exists()
    assert [p for p in root.iterdir() if p.name.startswith(".")] == []


# --- item 5: non-finite and absurd checkpoints, datasets ---------------------------------


def test_item5_nan_weights_and_zero_std_are_refused_and_the_c_export_too(
    small_policy: Path, tmp_path: Path
) -> None:
    from imitate.export.c import generate_c

    for field, value in (("net.0.weight", float("nan")), ("obs_std", 0.0)):
        checkpoint = load_checkpoint(small_policy)
        checkpoint["state_dict"][field].fill_(value)
        bad = tmp_path / f"bad_{field}.pt"
        torch.save(checkpoint, bad)
        with pytest.raises(CheckpointError, match=field.replace(".", r"\.")):
            load_policy(bad)
    policy = load_policy(small_policy)
    policy.obs_std.fill_(0.0)  # normalisation by 1 / 0
    with pytest.raises(ImitateError, match="finite"):
        generate_c(policy, int8=False)


def test_item5_absurd_sizes_are_refused_before_allocation(
    small_policy: Path, tmp_path: Path
) -> None:
    box = gym.spaces.Box(-1, 1, (4,))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="layer widths"):
        PolicyConfig(hidden=(10**8,))
    with pytest.raises(UnsupportedSpaceError, match="parameters"):
        MLPPolicy(box, gym.spaces.Discrete(10**10), PolicyConfig(hidden=(64,)))
    with pytest.raises(UnsupportedSpaceError, match="parameters"):
        MLPPolicy(box, gym.spaces.Discrete(2), PolicyConfig(hidden=(60_000, 60_000)))
    checkpoint = load_checkpoint(small_policy)
    checkpoint["constructor"]["action_space"] = {"type": "Discrete", "n": 10**10, "start": 0}
    torch.save(checkpoint, tmp_path / "huge.pt")
    with pytest.raises(CheckpointError):
        load_policy(tmp_path / "huge.pt")
    checkpoint = load_checkpoint(small_policy)
    checkpoint["constructor"]["hidden"] = [60_000]
    torch.save(checkpoint, tmp_path / "wide.pt")
    with pytest.raises(CheckpointError, match="does not match its architecture"):
        load_policy(tmp_path / "wide.pt")
    assert time.perf_counter() - start < 5  # nothing of gigabytes was allocated


def test_item5_an_npy_header_claiming_a_terabyte_is_one_line(
    demos_file: Path, tmp_path: Path
) -> None:
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(demos_file) as src, zipfile.ZipFile(forged, "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "obs.npy":
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 4)}
                )
                payload = b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + payload[128:]
            dst.writestr(info, payload)
    with pytest.raises(DatasetError, match="field 'obs' claims shape"):
        load_dataset(forged)


# --- item 6: file-system faults are one line, checked before the work ----------------------


def test_item6_disk_full_is_one_line_even_without_root(
    demos_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import imitate.fileio as fileio

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    out = tmp_path / "bc"
    monkeypatch.setattr(fileio.os, "fsync", full)
    args = ["bc", "--data", str(demos_file), "--out", str(out), "--eval-episodes", "0"]
    code, err = _cli([*args, "--max-steps", "20"], capsys)
    assert code == 2
    line = one_error_line(err)
    assert "No space left on device" in line and str(out) in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_item6_out_of_the_wrong_kind_is_refused_before_the_work(
    tmp_path: Path, small_policy: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import importlib

    collect_module = importlib.import_module("imitate.collect")

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the work started")

    monkeypatch.setattr(collect_module, "collect", no_work)
    monkeypatch.setattr(collect_module, "evaluate", no_work)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    cases = {
        "eval into a file": ["eval", "--policy", str(small_policy), "--out", str(notes)],
        "collect over a file": ["collect", "--out", str(notes)],
        "parent is a file": ["collect", "--out", str(notes / "d.npz")],
        "bc into a file": ["bc", "--data", str(notes), "--out", str(notes)],
    }
    for name, args in cases.items():
        code, err = _cli(args, capsys)
        assert code == 2, name
        assert str(notes) in one_error_line(err), name
    assert notes.read_text() == "mine"


def test_item6_a_read_only_filesystem_is_one_line(
    small_disk: SmallDisk, demos_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk.path)], check=True)
    try:
        for args in (
            ["collect", "--episodes", "1", "--out", str(small_disk.path / "d.npz")],
            ["bc", "--data", str(demos_file), "--out", str(small_disk.path / "bc")],
        ):
            code, err = _cli(args, capsys)
            assert code == 2 and "Read-only file system" in one_error_line(err), err
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk.path)], check=True)


# --- item 7: one validator for values ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["bc", "--data", "{data}", "--seed", "-1"], "--seed"),
        (["collect", "--seed", "-1"], "--seed"),
        (["distill", "--temperature", "0"], "--temperature"),
        (["distill", "--temperature", "-1"], "--temperature"),
        (["bc", "--data", "{data}", "--policy.hidden", "0"], "--policy.hidden"),
        (["bc", "--data", "{data}", "--policy.hidden", "-3"], "--policy.hidden"),
        (["bc", "--data", "{data}", "--eval-episodes", "-1"], "--eval-episodes"),
        (["eval", "--env", "", "--expert", "heuristic"], "--env"),
        (["sweep", "--seeds", "-2"], "--seeds"),
        (["run", "--seed", "-1"], "--seed"),
    ],
)
def test_item7_bad_values_are_refused_before_any_folder(
    args: list[str], flag: str, demos_file: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{data}", str(demos_file)) for a in args]
    code, err = _cli(argv, capsys)
    assert code == 2
    assert flag in one_error_line(err)
    assert list(tmp_path.iterdir()) == []  # no runs/ folder, empty or not


def test_item7_the_python_api_shares_the_validator() -> None:
    from imitate.distill import DistillConfig

    with pytest.raises(ImitateError, match="--seed"):
        BCConfig(seed=-1)
    with pytest.raises(ImitateError, match="--temperature"):
        DistillConfig(temperature=0.0)
    with pytest.raises(ImitateError, match="layer widths"):
        PolicyConfig(hidden=(0,))


# --- item 8: signals and stale temporaries -----------------------------------------------


SPAWNED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """A failing signal test must not leave its subprocess running."""
    yield
    while SPAWNED:
        proc = SPAWNED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _spawn(args: list[str], cwd: Path, **env: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    environment["PYTHONFAULTHANDLER"] = "1"  # a crash would show its stack in the failure
    proc = subprocess.Popen(
        [sys.executable, "-m", "imitate.cli", *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    SPAWNED.append(proc)
    return proc


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_item8_a_signal_python_swallows_is_delivered_again() -> None:
    """A signal that lands in a callback whose exceptions Python ignores (here a weakref
    callback; in the wild one inside an import's module lock) is not lost: the handlers
    are disarmed by then, so the command would run on (seen once: a BC run that ignored
    Ctrl-C). The unraisable hook delivers it again and it raises at an ordinary line."""
    import weakref

    from imitate.errors import Interrupted
    from imitate.signals import _raise, signals_raise

    class Target:
        pass

    reached, hook = [], sys.unraisablehook
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    with signals_raise(), pytest.raises(Interrupted) as caught:
        target = Target()
        ref = weakref.ref(target, lambda _: _raise(signal.SIGINT, None))
        del target  # the callback raises Interrupted; Python ignores it...
        for _ in range(500):  # ...and the signal, delivered again, raises here
            reached.append(ref)
            time.sleep(0.01)
    assert caught.value.signum == signal.SIGINT and len(reached) < 500
    assert signal.getsignal(signal.SIGINT) is before  # restored
    assert sys.unraisablehook is hook


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_item8_a_signal_during_training_is_one_line_and_no_folder(
    signum: int, code: int, tmp_path: Path, demos_file: Path
) -> None:
    out = tmp_path / "bc"
    args = ["bc", "--data", str(demos_file), "--out", str(out), "--max-steps", "10000000"]
    proc = _spawn([*args, "--patience", "1000000", "--eval-every", "1000000"], tmp_path)
    _wait_for(lambda: any(p.name.startswith(".bc.tmp-") for p in tmp_path.iterdir()), 60)
    time.sleep(0.5)  # training
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err  # a crash shows its stack (PYTHONFAULTHANDLER)
    assert err == "imitate: interrupted\n"
    assert not out.exists() and leftovers(tmp_path) == []


def test_item8_a_signal_during_the_imports_is_one_line(tmp_path: Path, demos_file: Path) -> None:
    """SIGINT while torch is being imported (bc imports it lazily, inside main)."""
    args = ["bc", "--data", str(demos_file), "--out", str(tmp_path / "bc"), "--max-steps", "99999"]
    proc = _spawn(args, tmp_path)

    def importing_torch() -> bool:
        assert proc.poll() is None, proc.communicate()
        try:
            return "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text()
        except OSError:
            return False

    _wait_for(importing_torch, 60)  # its shared libraries are being mapped: mid-import
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "imitate: interrupted\n", err
    assert not (tmp_path / "bc").exists()


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_item8_a_signal_during_a_ray_collect_leaves_no_ray_process(
    signum: int, code: int, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    import shutil
    import tempfile

    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's sockets need short paths
    args = ["collect", "--backend", "ray", "--workers", "1", "--episodes", "20000"]
    proc = _spawn([*args, "--out", str(tmp_path / "d.npz")], tmp_path, RAY_TMPDIR=str(ray_tmp))

    def ray_processes() -> list[int]:
        found = []
        for pid in os.listdir("/proc"):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if pid.isdigit() and int(pid) != proc.pid and str(ray_tmp).encode() in cmdline:
                found.append(int(pid))
        return found

    def started() -> bool:
        assert proc.poll() is None, proc.communicate()
        return len(ray_processes()) >= 2

    _wait_for(started, 300)  # Ray starts slowly on a busy machine
    time.sleep(10)  # past ray.init: the driver waits in ray.wait (Ray's Cython checks signals)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == "imitate: interrupted" and "Traceback" not in err
    _wait_for(lambda: not ray_processes(), 60)
    assert not (tmp_path / "d.npz").exists()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_item8_a_temporary_left_by_a_killed_writer_is_removed(
    small_policy: Path, tmp_path: Path
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".policy.pt.{dead.pid}.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    live = tmp_path / f".policy.pt.{os.getpid()}.def456.tmp"
    live.write_bytes(b"being written")
    stale_dir = tmp_path / f".run.tmp-{dead.pid}-xyz"
    stale_dir.mkdir()
    save_policy(load_policy(small_policy), tmp_path / "policy.pt")
    from imitate.runs import artefact_dir

    with artefact_dir(tmp_path / "run", "bc"):
        pass
    assert not stale.exists() and not stale_dir.exists()
    assert live.exists()  # a running writer's temporary is not touched


# --- item 9: warnings ----------------------------------------------------------------------


def test_item9_suspicious_data_warns_one_line_each_and_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demos = collect(CartPoleExpert(), "CartPole-v1", n_episodes=3, seed=0)
    obs = demos.obs.copy()
    obs[:, 2] = 0.0  # a constant feature
    obs[5, 0] = 100.0  # outside CartPole's position bound of 4.8
    terminated = demos.terminated.copy()
    terminated[10] = True  # a terminal step inside episode 0
    odd = Dataset(
        obs=obs,
        actions=np.zeros_like(demos.actions),  # one action only
        rewards=demos.rewards,
        terminated=terminated,
        truncated=demos.truncated,
        episode_starts=demos.episode_starts,
        meta=demos.meta,
    )
    from imitate.data import dataset_warnings

    assert dataset_warnings(demos) == []
    messages = dataset_warnings(odd)
    assert len(messages) == 4
    path = odd.save(tmp_path / "odd.npz")
    args = ["bc", "--data", str(path), "--out", str(tmp_path / "bc"), "--eval-episodes", "0"]
    code, out, err = run([*args, "--max-steps", "20", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["warnings"] == [f"{path}: {m}" for m in messages]
    warned = err.splitlines()
    assert len(warned) == 4 and all(line.startswith("imitate: warning: ") for line in warned)


def test_item9_a_huge_collect_is_announced_before_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    def stop(*args: object, **kwargs: object) -> None:
        raise ImitateError("stopped here")

    monkeypatch.setattr(importlib.import_module("imitate.collect"), "collect", stop)
    args = ["collect", "--episodes", "10000000", "--out", str(tmp_path / "d.npz")]
    code, _, err = run(args, capsys)
    assert code == 2
    assert err.splitlines()[0].startswith("imitate: warning: 10000000 episodes of up to 500 steps")


def test_item9_a_huge_collect_streams_to_disk_in_chunks_equal_to_one_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    from imitate.data import load_dataset

    data = importlib.import_module("imitate.data")
    collect_module = importlib.import_module("imitate.collect")
    # 500 steps x (16 + 8 + 6) bytes = 15 kB per CartPole episode: 4 episodes' worth makes
    # 7 episodes "too large", and a chunk is a quarter of the bound: 1 episode
    monkeypatch.setattr(data, "WARN_COLLECT_BYTES", 4 * 15_000)
    sizes: list[int] = []
    real_collect = collect_module.collect

    def spy(*args: object, **kwargs: object) -> Dataset:
        part = real_collect(*args, **kwargs)  # type: ignore[arg-type]
        sizes.append(len(part))
        return part

    monkeypatch.setattr(collect_module, "collect", spy)
    out = tmp_path / "d.npz"
    args = ["collect", "--episodes", "7", "--seed", "3", "--out", str(out), "--json"]
    code, stdout, err = run(args, capsys)
    assert code == 0, err
    assert "streams them to disk in chunks of 1 episodes" in err
    assert len(sizes) == 7  # one chunk per episode, none held with another
    result = json.loads(stdout)
    assert result["episodes"] == 7 and result["transitions"] == sum(sizes)
    streamed = load_dataset(out)
    whole = real_collect(CartPoleExpert(), "CartPole-v1", 7, 3, seeding="per-episode")
    for name, array in whole.arrays().items():
        np.testing.assert_array_equal(streamed.arrays()[name], array, err_msg=name)
    assert streamed.meta.seed == 3 and streamed.meta.seeding == "per-episode"
    assert result["mean_return"] == pytest.approx(float(whole.episode_returns.mean()))
    assert result["std_return"] == pytest.approx(float(whole.episode_returns.std()))
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no spool or temporary left
    bad = ["collect", "--episodes", "7", "--seeding", "stream", "--out", str(tmp_path / "s")]
    code, _, err = run(bad, capsys)
    assert code == 2 and "needs --seeding per-episode" in err


# --- item 10: no advice to load unsafely -------------------------------------------------


class _Gadget:
    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (print, (1,))


def test_item10_no_library_advice_to_load_unsafely(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save({"format": "imitate-policy", "payload": _Gadget()}, tmp_path / "evil.pt")
    np.savez(tmp_path / "evil.npz", obs=np.array([object()], dtype=object))
    for args in (
        ["eval", "--policy", str(tmp_path / "evil.pt")],
        ["bc", "--data", str(tmp_path / "evil.npz"), "--out", str(tmp_path / "bc")],
    ):
        code, _, err = run(args, capsys)
        line = one_error_line(err)
        assert code == 2
        for advice in ("weights_only", "allow_pickle", "unsafe", "trust the source"):
            assert advice not in line, line
        assert "pickled objects" in line


def test_item9_the_memory_estimate_counts_each_leaf_in_its_storage_dtype() -> None:
    """Pixel CartPole's uint8 frames are 1 byte per value (they were counted at 4: "7.2
    GiB" for 400 episodes that hold ~1.8), a Dict's leaves are all counted (a Dict has no
    shape: it was counted as one value)."""
    import gymnasium as gym

    import envs  # noqa: F401  (registers imitate/PixelCartPole-v1)
    from imitate.data import _step_bytes
    from imitate.observations import step_bytes

    _, per_step = _step_bytes("imitate/PixelCartPole-v1")
    frames = gym.make("imitate/PixelCartPole-v1").observation_space
    assert frames.dtype == np.uint8 and per_step == int(np.prod(frames.shape)) + 8 + 6
    space = gym.spaces.Dict(
        {
            "image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
            "direction": gym.spaces.Discrete(4),
            "mission": gym.spaces.Text(10),
            "pos": gym.spaces.Box(-1.0, 1.0, (2,), np.float64),
        }
    )
    assert step_bytes(space) == 147 + 8 + 4 * 10 + 2 * 4


def test_item8_constant_pixels_of_frames_are_not_a_warning() -> None:
    """Pixel CartPole's background pixels never change: every pixel collect and bc warned
    "observation features [0, 1, ...] are constant". Frames are exempt; a constant entry
    of a vector observation still warns (the test above)."""
    from agents.registry import resolve_expert
    from imitate.data import dataset_warnings

    env = "imitate/PixelCartPole-v1"
    frames = collect(resolve_expert("zoo", env), env, n_episodes=1, seed=0)
    flat = frames.obs.reshape(len(frames), -1)
    assert (flat.min(axis=0) == flat.max(axis=0)).any()  # there is a constant background
    assert dataset_warnings(frames) == []


def test_item8_a_signal_wrapped_by_a_library_is_still_an_interrupt_with_its_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A signal landing in torch's zip writer or a ``zipfile`` comes back as the library's
    own error with ``Interrupted`` as its context (seen once: an interrupted expert train
    printed no resume hint). It still exits 128 + signum, keeps the resume state and the
    hint set on the chain's ``Interrupted``."""
    from imitate.console import guarded
    from imitate.errors import Interrupted, interrupted_in
    from imitate.runs import RESUME_DIR, resumable

    def wrapped(hint: str | None) -> BaseException:
        inner = Interrupted(signal.SIGTERM)
        inner.resume_hint = hint
        try:
            try:
                raise inner
            except Interrupted:
                raise RuntimeError("PytorchStreamWriter failed writing file") from None
        except RuntimeError as outer:
            outer.__context__ = inner  # `from None` hides it from the traceback, not the chain
            return outer

    error = wrapped("imitate expert train --resume")
    found = interrupted_in(error)
    assert found is not None and found.signum == signal.SIGTERM
    assert interrupted_in(RuntimeError("plain")) is None

    def body() -> int:
        raise wrapped("imitate dagger --resume runs/x")

    assert guarded(body, own_process=False) == 143
    assert capsys.readouterr().err == (
        "imitate: interrupted; continue with: imitate dagger --resume runs/x\n"
    )

    target = tmp_path / "run"
    with pytest.raises(RuntimeError) as caught, resumable(target, "dagger", {}, False) as _:
        raise wrapped(None)
    again = interrupted_in(caught.value)
    assert again is not None and again.resume_hint == f"imitate dagger --resume {target}"
    assert (target / RESUME_DIR / "config.json").is_file()  # kept for --resume


def test_item8_a_signal_during_a_deferred_write_raises_after_it() -> None:
    """``deferred`` holds the signal until the write has finished, then raises it."""
    import os

    from imitate.errors import Interrupted
    from imitate.signals import deferred, signals_raise

    finished = []
    with signals_raise(), pytest.raises(Interrupted) as caught:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler has run by now: it held the signal
            finished.append(True)
        finished.append(False)  # not reached: raised on leaving the block
    assert finished == [True] and caught.value.signum == signal.SIGTERM
    with deferred():  # without imitate's handlers (a library user's program): runs as is
        finished.append(True)
    assert finished == [True, True]
