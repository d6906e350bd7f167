"""Side-by-side videos and the HTML drift report, the report checked in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from agents.heuristics import CartPoleExpert
from imitate.drift import analyse_drift, state_names
from imitate.report import HEADLESS_CHROMIUM_FLAGS, write_html_report
from imitate.video import (
    RED,
    compose_frames,
    render_paired_episode,
    showcase_videos,
    side_by_side,
)


class SloppyCartPole:
    """The CartPole heuristic, but it pushes the wrong way whenever the pole is nearly
    upright and moving left: a clone that drifts, with no training needed."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        actions = CartPoleExpert().act(obs)
        sloppy = (np.abs(obs[:, 2]) < 0.02) & (obs[:, 3] < 0)
        return np.where(sloppy, 1 - actions, actions)


SCALE = np.array([0.1, 0.1, 0.01, 0.1])


def _is_red(pixel: np.ndarray) -> bool:
    return bool(np.abs(pixel.astype(int) - np.array(RED)).max() < 30)


def test_identical_policies_give_a_video_without_divergence() -> None:
    episode = render_paired_episode(
        CartPoleExpert(), CartPoleExpert(), "CartPole-v1", 3, SCALE, max_frames=20
    )
    assert episode.first_divergence is None and np.nanmax(episode.distance) == 0.0
    frames = compose_frames(episode, "same")
    assert len(frames) == len(episode.frame_steps) <= 21
    assert not any(_is_red(f[20, -3]) for f in frames)  # no red border anywhere


def test_the_red_border_starts_at_the_first_divergence(tmp_path: Path) -> None:
    episode = render_paired_episode(
        CartPoleExpert(), SloppyCartPole(), "CartPole-v1", 0, SCALE, max_frames=40
    )
    first = episode.first_divergence
    assert first is not None and 0 < first < episode.steps
    frames = compose_frames(episode, "sloppy")
    steps = list(episode.frame_steps)
    assert first in steps
    width = frames[0].shape[1]
    for t, frame in zip(steps, frames, strict=True):
        right_border = frame[40, width - 2]  # a pixel on the clone pane's right edge
        assert _is_red(right_border) == (t >= first), t
    # the strip's divergence marker: red pixels in the bottom rows of every frame
    assert all(any(_is_red(p) for p in f[-10:].reshape(-1, 3)) for f in frames)
    _, files = side_by_side(
        CartPoleExpert(),
        SloppyCartPole(),
        "sloppy",
        "CartPole-v1",
        0,
        SCALE,
        tmp_path / "v",
        max_frames=40,
    )
    gif = next(f for f in files if f.suffix == ".gif")
    with Image.open(gif) as image:
        assert image.n_frames > 10 and image.size == (width, frames[0].shape[0])


def test_a_video_replays_the_paired_rollout() -> None:
    analysis = analyse_drift(
        "CartPole-v1", CartPoleExpert(), {"sloppy": SloppyCartPole()}, 4, 100, horizons=(10, 20)
    )
    pair = analysis.pairs["sloppy"]
    assert pair.scale is not None
    episode = render_paired_episode(
        CartPoleExpert(), SloppyCartPole(), "CartPole-v1", 102, pair.scale, render=False
    )
    n = len(episode.clone_obs)
    np.testing.assert_allclose(episode.clone_obs, pair.clone_obs[2, :n], rtol=0, atol=1e-6)
    np.testing.assert_allclose(episode.distance[:n], pair.distance[2, :n], atol=1e-5)


def test_an_env_without_rendering_gets_the_strip_and_trajectories(tmp_path: Path) -> None:
    from envs.tightrope import TightropeExpert

    class Lazy:
        def act(self, obs: np.ndarray) -> np.ndarray:
            return np.full(len(obs), 2)  # never counters the wind

    _, files = side_by_side(
        TightropeExpert(),
        Lazy(),
        "lazy",
        "imitate/Tightrope-v0",
        0,
        np.ones(2),
        tmp_path / "tight",
        dim_names=state_names("imitate/Tightrope-v0", 2),
    )
    assert [f.suffix for f in files] == [".png"] and files[0].stat().st_size > 10_000


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));
window.addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason)));
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(' ')); __consoleError(...args); };
window.addEventListener('load', () => setTimeout(() => {
  const imgs = [...document.querySelectorAll('figure.video img')];
  const result = {
    errors: window.__errors,
    plots: [...document.querySelectorAll('.js-plotly-plot')].map(
      d => [d.id, d.querySelectorAll('.main-svg').length, d.querySelectorAll('.trace').length]),
    videos: imgs.map(i => [i.naturalWidth, i.naturalHeight, i.src.slice(0, 22)]),
  };
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
}, 500));
</script>"""


@pytest.mark.slow
@pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium; `make browser`)",
)
def test_report_html_loads_in_headless_chromium(tmp_path: Path) -> None:
    clones = {"sloppy": SloppyCartPole(), "expert copy": CartPoleExpert()}
    analysis = analyse_drift(
        "CartPole-v1", CartPoleExpert(), clones, 6, 10_000, horizons=(10, 20, 40)
    )
    videos = showcase_videos(
        analysis, CartPoleExpert(), clones, tmp_path, per_clone=1, mp4=False, max_frames=30
    )
    page = write_html_report(tmp_path / "report.html", "test report", analysis, (), videos)
    text = page.read_text()
    assert "<script src=" not in text and "cart position" in text and "pole angle" in text
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1))
    shot = tmp_path / "shot.png"
    browse = [
        str(CHROMIUM),
        *HEADLESS_CHROMIUM_FLAGS,
        "--user-data-dir=" + str(tmp_path / "profile"),
    ]
    dom = subprocess.run(
        [*browse, "--window-size=1200,1800", f"--screenshot={shot}", "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert match, dom[-2000:]
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    plots = {name: (svgs, traces) for name, svgs, traces in result["plots"]}
    for name in ("trajectories", "distance", "disagreement", "divergence", "horizon"):
        svgs, traces = plots[f"plot-{name}"]
        assert svgs >= 1 and traces >= 1, (name, plots)
    assert len(result["videos"]) == len(videos) == 2
    assert all(
        w > 400 and h > 100 and src.startswith("data:image/gif") for w, h, src in result["videos"]
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1800, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # more than a blank page


def test_videos_play_at_about_the_envs_own_speed() -> None:
    from imitate.video import playback_fps

    assert playback_fps("CartPole-v1", 4) == 12.5  # render_fps 50, every 4th step
    assert playback_fps("CartPole-v1", 1) == 25.0 and playback_fps("CartPole-v1", 20) == 8.0


def _synthetic_analysis(n_features: int, named: bool, drifting: tuple[int, ...] = ()) -> Any:
    """A drift analysis of ``n_features`` features without rollouts: the even features vary
    alike for expert and clone, the odd ones are constant, and the clone moves away from
    the expert on ``drifting`` from step 5 on (its episode 1 ends early)."""
    from imitate.drift import DriftAnalysis, PairedRollouts

    rng = np.random.default_rng(0)
    episodes, steps = 3, 20
    expert = np.zeros((episodes, steps, n_features))
    expert[..., ::2] = rng.normal(size=(episodes, steps, len(range(0, n_features, 2))))
    clone = expert.copy()
    clone[:, 5:, list(drifting)] += 3.0
    clone[1, 15:] = np.nan
    pair = PairedRollouts(
        expert,
        clone,
        distance=np.abs(rng.normal(size=(episodes, steps))),
        first_divergence=np.array([5.0, np.nan, 5.0]),
        clone_failure=np.full(episodes, np.nan),
        expert_returns=np.zeros(episodes),
        clone_returns=np.zeros(episodes),
        threshold=1.0,
        seed=100,
    )
    names = tuple(f"obs:feature[{i}]" for i in range(n_features)) if named else ()
    return DriftAnalysis(
        "imitate/ObsDict-v0",
        episodes,
        100,
        1.0,
        {"clone": pair},
        {"clone": rng.random((episodes, steps))},
        {},
        {},
        feature_names=names,
    )


def test_many_features_plot_the_most_informative_and_say_so(tmp_path: Path) -> None:
    """A Dict observation flattens to many features (BabyAI: 138): plotly refused one row
    each (vertical spacing > 1/(rows-1)), which failed `imitate run` at its very end."""
    from imitate.report import trajectories_figure

    drifting = (3, 70, 101, 136)
    analysis = _synthetic_analysis(138, named=True, drifting=drifting)
    fig = trajectories_figure(analysis)  # raised plotly's ValueError
    from imitate.drift import MAX_PLOTTED_FEATURES, drift_figures, plotted_features

    dims, caption = plotted_features(analysis)
    assert len(dims) == MAX_PLOTTED_FEATURES and dims == sorted(dims)
    assert set(drifting) <= set(dims)  # where the clone left the expert
    assert all(d % 2 == 0 for d in set(dims) - set(drifting))  # then varying, not constant
    assert caption.startswith(f"{MAX_PLOTTED_FEATURES} of 138 features")
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [f"obs:feature[{d}]" for d in dims]
    assert caption in fig.layout.title.text
    page = write_html_report(tmp_path / "report.html", "many features", analysis)
    assert "plot-trajectories" in page.read_text() and caption in page.read_text()
    assert Path(drift_figures(analysis, tmp_path)["trajectories"]).stat().st_size > 10_000


def test_box_dimensions_all_plotted_up_to_a_cap() -> None:
    from imitate.drift import MAX_PLOTTED_DIMS, plotted_features
    from imitate.report import trajectories_figure

    small = _synthetic_analysis(4, named=False)
    assert plotted_features(small) == ([0, 1, 2, 3], "")  # every dimension, as before
    assert len(trajectories_figure(small).layout.annotations) == 4
    big = _synthetic_analysis(100, named=False, drifting=(51,))
    dims, caption = plotted_features(big)
    assert len(dims) == MAX_PLOTTED_DIMS and 51 in dims and "of 100 features" in caption
    titles = [a.text for a in trajectories_figure(big).layout.annotations]
    assert titles == [f"state[{d}]" for d in dims]


def test_a_report_figure_failure_keeps_the_drift_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A figure that cannot be drawn costs report.html only: the command still writes
    drift.json and report.md, warns in one line and says why in drift.json."""
    import imitate.report
    from imitate import BCConfig, OptimConfig, collect, save_policy, train_bc
    from imitate.cli import main

    def broken(analysis: Any, episodes: int = 3) -> Any:
        raise ValueError("Vertical spacing cannot be greater than 0.007\nmore lines")

    monkeypatch.setattr(imitate.report, "trajectories_figure", broken)
    demos = collect(CartPoleExpert(), "CartPole-v1", 1, seed=0)
    clone = save_policy(
        train_bc(demos, BCConfig(optim=OptimConfig(max_steps=50)))[0],
        tmp_path / "bc" / "policy.pt",
        {"env_id": "CartPole-v1"},
    )
    out = tmp_path / "d"
    args = ["drift", "--env", "CartPole-v1", "--policy", str(clone), "--episodes", "2"]
    assert main([*args, "--horizons", "10", "20", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "imitate: warning: report.html not written: ValueError: Vertical spacing" in err
    assert "more lines" not in err
    result = json.loads((out / "drift.json").read_text())
    assert result["skipped"]["report.html"].startswith("not written: ValueError")
    assert (out / "report.md").is_file() and not (out / "report.html").exists()


def test_a_file_system_fault_in_report_html_is_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only drawing failures become a "skipped" report.html: a full disk (OSError) or a
    user error still stops the command (its artefact set is then discarded whole)."""
    import errno

    import imitate.report
    from imitate.errors import ImitateError

    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(imitate.report, "write_html_report", full)
    with pytest.raises(OSError, match="No space left"):
        imitate.report.html_report_or_reason(tmp_path / "r.html", "t", None)  # type: ignore[arg-type]

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise ImitateError("refused")

    monkeypatch.setattr(imitate.report, "write_html_report", refused)
    with pytest.raises(ImitateError, match="refused"):
        imitate.report.html_report_or_reason(tmp_path / "r.html", "t", None)  # type: ignore[arg-type]
