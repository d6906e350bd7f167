"""Side-by-side episode videos: the expert and a clone from the same reset seed.

:func:`render_paired_episode` runs one episode of each policy in lockstep, each in its
own ``rgb_array`` env from ``reset(seed=seed)`` (batch-of-one actions), recording the
states and only the frames the video keeps; :func:`compose_frames` lays the two frames
side by side with the step counter and, below them, a strip with the per-step state
distance (expert-std units), the divergence threshold and a cursor. From the first
divergence on, the clone's frame gets a red border and the strip a red marker.
:func:`write_video` writes a GIF (Pillow, imageio's GIF backend; always) and an MP4
(imageio with ``imageio-ffmpeg``, when installed). Envs that cannot render get
:func:`plot_paired_episode` instead: the distance strip and the trajectories as a PNG.

The compositing is hand-written with Pillow's ``ImageDraw`` (a few rectangles, a
polyline and text per frame): drawing each frame with matplotlib would cost ~30 ms a
frame, ten times the env's own rendering. The episode in the video is the video's own
data: its distance strip is computed from the states it shows, so the picture and the
numbers printed on it agree even if a batch-of-one rollout were to differ from the
vectorised paired rollout at an exact action tie (tested equal on CartPole).
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imitate.collect import env_spec
from imitate.drift import DriftAnalysis
from imitate.errors import EnvError
from imitate.fileio import write_bytes
from imitate.policy import Policy, RecurrentPolicy, fast_policy

RED = (220, 30, 30)
BLUE = (31, 119, 180)
BLACK = (0, 0, 0)
GREY = (150, 150, 150)
WHITE = (255, 255, 255)
STRIP_HEIGHT = 56
HEADER_HEIGHT = 18


@dataclass(frozen=True)
class PairedEpisode:
    """One episode of the expert and one of the clone, both from ``reset(seed=seed)``.

    Attributes:
        seed: the reset seed.
        frame_steps: ``[K]`` the steps that have frames (every ``stride``-th, the first
            divergence, the last), or empty when the env cannot render.
        expert_frames, clone_frames: ``[K, H, W, 3]`` uint8: each policy's frame at those
            steps (the state the action was taken in; its last frame once its episode is
            over), or None when the env cannot render.
        expert_obs, clone_obs: ``[T_e, obs_dim]`` / ``[T_c, obs_dim]``.
        distance: ``[max(T_e, T_c)]`` normalised state distance, NaN once either ended.
        first_divergence: first step with distance > ``threshold``, or None.
        threshold: divergence threshold (expert-std units).
        expert_return, clone_return: undiscounted returns.
    """

    seed: int
    frame_steps: np.ndarray
    expert_frames: np.ndarray | None
    clone_frames: np.ndarray | None
    expert_obs: np.ndarray
    clone_obs: np.ndarray
    distance: np.ndarray
    first_divergence: int | None
    threshold: float
    expert_return: float
    clone_return: float

    @property
    def steps(self) -> int:
        return len(self.distance)


def can_render(env_id: str) -> bool:
    """Whether ``env_id`` offers ``rgb_array`` rendering."""
    return "rgb_array" in (_metadata(env_id).get("render_modes") or [])


def _metadata(env_id: str) -> dict[str, Any]:
    env = gym.make(env_spec(env_id))  # kwargs and wrappers included
    try:
        return dict(env.metadata)
    finally:
        env.close()


def playback_fps(env_id: str, stride: int) -> float:
    """Frames a second that play a clip sampled every ``stride`` steps at about the env's own
    speed (``render_fps``, default 50), kept within 8-25 so that it neither crawls nor
    skips."""
    fps = float(_metadata(env_id).get("render_fps") or 50) / max(stride, 1)
    return float(np.clip(fps, 8.0, 25.0))


class _Runner:
    """One policy in its own env, stepped one action at a time from ``reset(seed=seed)``."""

    def __init__(self, policy: Policy, env_id: str, seed: int, render: bool) -> None:
        spec = env_spec(env_id)  # an id or a spec with the user's kwargs and wrappers
        if render:
            # pygame's rgb_array rendering calls pygame.init(), whose audio and display
            # probes print "error: XDG_RUNTIME_DIR ..." on a headless machine; frames need
            # neither (a user's own SDL settings win).
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        self.env = gym.make(spec, render_mode="rgb_array") if render else gym.make(spec)
        self.actor = fast_policy(policy)
        obs, _ = self.env.reset(seed=seed)
        self.obs = np.asarray(obs, dtype=np.float32)
        self.state = (
            self.actor.initial_state(1) if isinstance(self.actor, RecurrentPolicy) else None
        )
        self.states: list[np.ndarray] = []
        self.total = 0.0
        self.done = False
        self.last_frame: np.ndarray | None = None

    def frame(self) -> np.ndarray:
        """The current frame (the last one once the episode is over)."""
        if not self.done or self.last_frame is None:
            self.last_frame = np.asarray(self.env.render(), dtype=np.uint8)
        return self.last_frame

    def step(self) -> None:
        batch = self.obs[None]
        self.states.append(self.obs)
        if self.state is not None and isinstance(self.actor, RecurrentPolicy):
            actions, self.state = self.actor.step(batch, self.state)
        else:
            actions = self.actor.act(batch)
        obs, reward, terminated, truncated, _ = self.env.step(np.asarray(actions)[0])
        self.total += float(reward)
        if terminated or truncated:
            self.done = True
        else:
            self.obs = np.asarray(obs, dtype=np.float32)


def render_paired_episode(
    expert: Policy,
    clone: Policy,
    env_id: str,
    seed: int,
    scale: np.ndarray,
    threshold: float = 1.0,
    max_frames: int = 160,
    render: bool | None = None,
) -> PairedEpisode:
    """Run expert and clone in lockstep from ``reset(seed=seed)`` in two envs; ``scale
    [obs_dim]`` normalises the state distance (the expert's state std).

    Frames are taken at every ``ceil(time limit / max_frames)``-th step and at the first
    divergence (known as it happens, since both run side by side), so only the frames the
    video keeps are ever rendered."""
    render = can_render(env_id) if render is None else render
    limit = env_spec(env_id).max_episode_steps or 1000
    stride = max(1, math.ceil(limit / max_frames))
    scale = np.asarray(scale, dtype=np.float64).ravel()
    runners = (_Runner(expert, env_id, seed, render), _Runner(clone, env_id, seed, render))
    distance: list[float] = []
    first: int | None = None
    frame_steps: list[int] = []
    frames: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    try:
        t = 0
        while not all(r.done for r in runners):
            if not any(r.done for r in runners):
                gap = (runners[1].obs.astype(np.float64) - runners[0].obs).ravel() / scale
                distance.append(float(np.sqrt((gap**2).sum())))
                if first is None and distance[-1] > threshold:
                    first = t
            else:
                distance.append(float("nan"))
            if render and (t % stride == 0 or first == t):
                frame_steps.append(t)
                for k, runner in enumerate(runners):
                    frames[k].append(runner.frame())
            for runner in runners:
                if not runner.done:
                    runner.step()
            t += 1
        if render and frame_steps[-1] != t - 1:  # always show the end
            frame_steps.append(t - 1)
            for k, runner in enumerate(runners):
                frames[k].append(runner.frame())
    finally:
        for runner in runners:
            runner.env.close()
    expert_run, clone_run = runners
    return PairedEpisode(
        seed=seed,
        frame_steps=np.asarray(frame_steps, dtype=np.int64),
        expert_frames=np.stack(frames[0]) if render else None,
        clone_frames=np.stack(frames[1]) if render else None,
        expert_obs=np.stack(expert_run.states).astype(np.float64),
        clone_obs=np.stack(clone_run.states).astype(np.float64),
        distance=np.asarray(distance),
        first_divergence=first,
        threshold=threshold,
        expert_return=expert_run.total,
        clone_return=clone_run.total,
    )


def _resize(frame: np.ndarray, width: int) -> Image.Image:
    """``frame`` scaled to ``width`` (box-filtered by an integer factor where one fits, which
    is ~10x cheaper than a bilinear resize), with an even height for the MP4 encoder."""
    image = Image.fromarray(frame)
    factor = image.width // width
    if factor >= 2 and image.width % factor == 0 and image.width // factor == width:
        image = image.reduce(factor)
    height = max(2, round(image.height * width / image.width) // 2 * 2)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return image


def _strip_points(
    distance: np.ndarray, x0: int, width: int, top: int, height: int, y_max: float
) -> list[list[tuple[float, float]]]:
    """Polyline segments of the distance curve in strip pixel coordinates (NaN breaks)."""
    steps = len(distance)
    segments: list[list[tuple[float, float]]] = [[]]
    for t, value in enumerate(distance):
        if np.isnan(value):
            if segments[-1]:
                segments.append([])
            continue
        x = x0 + width * t / max(steps - 1, 1)
        y = top + height - height * min(value, y_max) / y_max
        segments[-1].append((x, y))
    return [s for s in segments if len(s) >= 2]


def compose_frames(episode: PairedEpisode, clone_name: str, width: int = 300) -> list[np.ndarray]:
    """Video frames ``[H, W, 3]``, one per rendered step: expert (left) and clone (right),
    their names and the step counter above, the distance strip below.

    A policy whose episode has ended keeps showing its last frame, greyed."""
    if episode.expert_frames is None or episode.clone_frames is None:
        raise EnvError("this env does not render rgb_array frames")
    font = ImageFont.load_default()
    pane_h = _resize(episode.expert_frames[0], width).height
    total_w, total_h = 2 * width + 6, HEADER_HEIGHT + pane_h + STRIP_HEIGHT + 4
    strip_top = HEADER_HEIGHT + pane_h + 4
    plot_top, plot_h = strip_top + 4, STRIP_HEIGHT - 18
    finite = episode.distance[~np.isnan(episode.distance)]
    y_max = max(2.0 * episode.threshold, float(finite.max()) if len(finite) else 1.0) * 1.05
    segments = _strip_points(episode.distance, 4, total_w - 8, plot_top, plot_h, y_max)
    threshold_y = plot_top + plot_h * (1 - episode.threshold / y_max)
    steps = episode.steps
    lengths = (len(episode.expert_obs), len(episode.clone_obs))
    first = episode.first_divergence
    out = []
    for k_frame, t in enumerate(int(x) for x in episode.frame_steps):
        canvas = Image.new("RGB", (total_w, total_h), WHITE)
        draw = ImageDraw.Draw(canvas)
        panes = ((episode.expert_frames, "expert"), (episode.clone_frames, clone_name))
        for k, (frames, name) in enumerate(panes):
            pane = _resize(frames[k_frame], width)
            if t >= lengths[k]:
                pane = Image.blend(pane, Image.new("RGB", pane.size, GREY), 0.5)
                name += " (episode over)"
            x = k * (width + 6)
            canvas.paste(pane, (x, HEADER_HEIGHT))
            draw.text((x + 3, 3), name, fill=BLACK, font=font)
            if k == 1 and first is not None and t >= first:
                box = (x, HEADER_HEIGHT, x + width - 1, HEADER_HEIGHT + pane_h - 1)
                draw.rectangle(box, outline=RED, width=4)
        value = episode.distance[t]
        label = f"t = {t}/{steps}"
        if np.isfinite(value):
            label += f"   state distance {value:.2f}"
        if first is not None and t >= first:
            label += f"   diverged at t = {first}"
        draw.rectangle((0, strip_top, total_w - 1, total_h - 1), outline=GREY)
        draw.line((4, threshold_y, total_w - 4, threshold_y), fill=GREY, width=1)
        for segment in segments:
            draw.line(segment, fill=BLUE, width=2)
        cursor = 4 + (total_w - 8) * t / max(steps - 1, 1)
        draw.line((cursor, strip_top + 2, cursor, plot_top + plot_h), fill=BLACK, width=1)
        if first is not None:
            marker = 4 + (total_w - 8) * first / max(steps - 1, 1)
            tip = plot_top + plot_h + 1
            draw.polygon([(marker - 5, tip + 7), (marker + 5, tip + 7), (marker, tip)], fill=RED)
        draw.text((14, total_h - 12), label, fill=BLACK, font=font)
        out.append(np.asarray(canvas))
    return out


def gif_from_frames(frames: list[np.ndarray], fps: float = 25.0) -> bytes:
    """A looping GIF of ``frames`` with one palette for the whole clip.

    Pillow (imageio's GIF backend) quantises each RGB frame adaptively by default, at
    ~25 ms a frame here; quantising every frame to one palette taken from the first and
    last frames is ~8x faster, and these renders have few colours."""
    montage = Image.fromarray(np.concatenate([frames[0], frames[len(frames) // 2], frames[-1]]))
    palette = montage.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    images = [
        Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames
    ]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
    )
    return buffer.getvalue()


def mp4_available() -> bool:
    """Whether MP4 can be written (the ``imageio-ffmpeg`` package is installed)."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def write_video(
    frames: list[np.ndarray], path: str | os.PathLike[str], fps: float = 25.0, mp4: bool = True
) -> list[Path]:
    """``path`` as a looping GIF (always) and, with ``mp4`` and imageio-ffmpeg, the same
    frames as ``path.mp4`` (H.264). Both are written atomically; returns the paths."""
    target = Path(path).with_suffix(".gif")
    written = [write_bytes(target, gif_from_frames(frames, fps))]
    if mp4 and mp4_available():
        import imageio.v2 as iio2

        mp4_path = target.with_suffix(".mp4")
        fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=mp4_path.parent, prefix=".tmp-")
        os.close(fd)
        try:
            clip: Any = frames
            iio2.mimwrite(tmp, clip, fps=fps, format="FFMPEG", codec="libx264", macro_block_size=2)
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)  # mkstemp creates 0600; give it a normal file's mode
            os.replace(tmp, mp4_path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(mp4_path)
    return written


def plot_paired_episode(
    episode: PairedEpisode,
    clone_name: str,
    path: str | os.PathLike[str],
    dim_names: list[str] | None = None,
) -> Path:
    """For envs without rendering: the distance strip and each state dimension of expert and
    clone over the episode, the first divergence marked in red (a PNG)."""
    from imitate.plots import plt, save_figure

    dims = episode.expert_obs.shape[1]
    names = dim_names or [f"state[{i}]" for i in range(dims)]
    fig, axes = plt.subplots(dims + 1, 1, figsize=(7.0, 1.5 * (dims + 1) + 0.6), sharex=True)
    axes[0].plot(episode.distance, color="tab:blue")
    axes[0].axhline(episode.threshold, color="grey", linestyle=":", label="threshold")
    axes[0].set_ylabel("distance\n(expert std)", fontsize=8)
    for d in range(dims):
        axes[d + 1].plot(episode.expert_obs[:, d], color="black", label="expert")
        axes[d + 1].plot(
            episode.clone_obs[:, d], color="tab:orange", linestyle="--", label=clone_name
        )
        axes[d + 1].set_ylabel(names[d], fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
        if episode.first_divergence is not None:
            ax.axvline(episode.first_divergence, color="red", linewidth=1)
    axes[1].legend(fontsize=7)
    first = episode.first_divergence
    axes[0].set_title(
        f"{clone_name} vs expert, reset seed {episode.seed}: "
        + (f"first divergence at t = {first} (red)" if first is not None else "never diverges"),
        fontsize=9,
    )
    axes[-1].set_xlabel("step t")
    return save_figure(fig, path)


@dataclass(frozen=True)
class EpisodeVideo:
    """A rendered paired episode: which clone and episode, why chosen, and its files."""

    clone: str
    episode: int
    seed: int
    why: str
    first_divergence: int | None
    steps: int
    files: tuple[Path, ...]
    """GIF (and MP4) for rendering envs; the PNG strip + trajectories otherwise."""

    def to_json(self) -> dict[str, Any]:
        return {
            "clone": self.clone,
            "episode": self.episode,
            "seed": self.seed,
            "why": self.why,
            "first_divergence": self.first_divergence,
            "steps": self.steps,
            "files": [str(f) for f in self.files],
        }


def side_by_side(
    expert: Policy,
    clone: Policy,
    clone_name: str,
    env_id: str,
    seed: int,
    scale: np.ndarray,
    path: str | os.PathLike[str],
    threshold: float = 1.0,
    width: int = 300,
    max_frames: int = 160,
    mp4: bool = True,
    dim_names: list[str] | None = None,
) -> tuple[PairedEpisode, list[Path]]:
    """Render one paired episode to ``path`` (.gif / .mp4, or .png without rendering).

    At most ``max_frames`` frames are kept (every ``ceil(T / max_frames)``-th step, plus
    the first divergence), played at about the env's own speed (:func:`playback_fps`)."""
    episode = render_paired_episode(expert, clone, env_id, seed, scale, threshold, max_frames)
    target = Path(path)
    if episode.expert_frames is None:
        png = plot_paired_episode(episode, clone_name, target.with_suffix(".png"), dim_names)
        return episode, [png]
    steps = episode.frame_steps
    stride = int(np.median(np.diff(steps))) if len(steps) > 2 else 1
    fps = playback_fps(env_id, stride)
    return episode, write_video(compose_frames(episode, clone_name, width), target, fps, mp4)


def gif_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a written GIF (for embedding in the HTML report)."""
    return Path(path).read_bytes()


def first_frame_png(path: str | os.PathLike[str], frame: int = 0) -> bytes:
    """One frame of a GIF as PNG bytes (the README's still)."""
    with Image.open(path) as image:
        image.seek(frame)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()


def showcase_videos(
    analysis: DriftAnalysis,
    expert: Policy,
    clones: dict[str, Policy],
    out_dir: str | os.PathLike[str],
    per_clone: int = 3,
    mp4: bool = True,
    progress: bool = False,
    max_frames: int = 160,
) -> list[EpisodeVideo]:
    """Render, for each clone, up to ``per_clone`` of its paired episodes (the one that
    diverges earliest, a median one, the best) into ``out_dir/videos/``."""
    from tqdm.auto import tqdm

    jobs = [
        (name, why, episode)
        for name in clones
        for why, episode in list(analysis.pairs[name].showcase_episodes().items())[:per_clone]
    ]
    videos = []
    folder = Path(out_dir) / "videos"
    for name, why, episode in tqdm(jobs, desc="videos", disable=not progress, leave=False):
        pair = analysis.pairs[name]
        scale = pair.scale if pair.scale is not None else np.ones(pair.expert_obs.shape[-1])
        seed = analysis.seed + episode
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        played, files = side_by_side(
            expert,
            clones[name],
            name,
            analysis.env if analysis.env is not None else analysis.env_id,
            seed,
            scale,
            folder / f"{stem}_{why.split()[0]}_seed{seed}",
            analysis.threshold,
            mp4=mp4,
            dim_names=analysis.state_names,
            max_frames=max_frames,
        )
        videos.append(
            EpisodeVideo(
                name, episode, seed, why, played.first_divergence, played.steps, tuple(files)
            )
        )
    return videos
