"""Video in, drawn video out: decode, inference and drawing overlap in three threads.

    reader thread:  OpenCV decode (BGR)                         -> queue
    main thread:    to RGB tensor, letterbox, run, decode heads -> queue
    writer thread:  draw (heads' draw), OpenCV encode (mp4v)

Bounded queues let the slowest stage set the pace (OpenCV and torch release the GIL in their
heavy calls). Frames of any size are letterboxed to the model's input (see frames.py) and drawn
at their own size, so the output video has the input's size, frame rate and frame count.

The output is written to a temporary file next to OUT and renamed only after the last frame; on
any error or interrupt the temporary file is deleted, so OUT is complete or absent.
"""
from __future__ import annotations

import math
import queue
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from plugrcnn.errors import PlugrcnnError
from plugrcnn_deploy.draw import DetectionDrawer
from plugrcnn_deploy.files import atomic_output
from plugrcnn_deploy.runtimes.base import Runtime
from plugrcnn_deploy.stats import StageTimer

STAGES = ["decode", "preprocess", "infer", "postprocess", "draw", "encode", "latency"]
_END = object()


@dataclass
class VideoReport:
    frames: int
    seconds: float
    timer: StageTimer

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> list[str]:
        return [f"{self.frames} frames in {self.seconds:.2f} s: {self.fps:.2f} FPS end to end "
                f"(decode, inference, drawing and encoding included)", *self.timer.table(STAGES)]


def open_video(path: Path) -> tuple[Any, float, int]:
    """An opened cv2.VideoCapture, its frame rate and its (maybe unknown, 0) frame count."""
    import cv2

    if not path.is_file():
        raise PlugrcnnError(f"{path}: video file not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise PlugrcnnError(f"{path}: OpenCV cannot open this video (not a video, or an unsupported codec)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and math.isfinite(fps) and fps > 0 else 25.0
    return capture, fps, max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)


class _Worker(threading.Thread):
    """A thread that remembers the exception it died of."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # re-raised by the main thread
            self.error = exc


class VideoPipeline:
    def __init__(self, runtime: Runtime, drawer: DetectionDrawer, queue_size: int = 4) -> None:
        self.runtime = runtime
        self.drawer = drawer
        self.queue_size = queue_size
        self.draw_device = runtime.device
        self.timer = StageTimer(runtime.device)
        self.frames_read = 0

    def process(self, source: Path, output: Path, progress: bool = True) -> VideoReport:
        import cv2

        capture, fps, total = open_video(source)
        try:
            ok, first = capture.read()
            if not ok or first is None:
                raise PlugrcnnError(f"{source}: the video has no frames that can be decoded")
            height, width = first.shape[:2]
            with atomic_output(output) as tmp:
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                if not writer.isOpened():
                    raise PlugrcnnError(f"{output}: OpenCV cannot write an mp4v video here")
                try:
                    start = time.perf_counter()
                    frames = self._run(capture, first, writer, total, progress)
                    seconds = time.perf_counter() - start
                finally:
                    writer.release()
        finally:
            capture.release()
        return VideoReport(frames, seconds, self.timer)

    def _run(self, capture: Any, first: np.ndarray, writer: Any, total: int, progress: bool) -> int:
        decoded: queue.Queue = queue.Queue(self.queue_size)
        drawn: queue.Queue = queue.Queue(self.queue_size)
        stop = threading.Event()
        reader = _Worker(lambda: self._read(capture, first, decoded, stop), "plugrcnn-decode")
        written = [0]
        bar = tqdm(total=total or None, unit="frame", desc="video", disable=not progress)
        encoder = _Worker(lambda: self._write(writer, drawn, stop, written, bar), "plugrcnn-encode")
        reader.start()
        encoder.start()
        try:
            self._infer_loop(decoded, drawn, stop, (reader, encoder))
            _put(drawn, _END, lambda: not encoder.is_alive())
        finally:
            stop.set()  # on an error: the reader stops, the encoder drains what is queued and ends
            reader.join()
            encoder.join()
            bar.close()
        for worker in (reader, encoder):
            if worker.error is not None:
                raise worker.error
        if written[0] != self.frames_read:
            raise PlugrcnnError(f"video: decoded {self.frames_read} frames but wrote {written[0]}")
        return written[0]

    def _read(self, capture: Any, first: np.ndarray, out: queue.Queue, stop: threading.Event) -> None:
        frame, began = first, time.perf_counter()
        while frame is not None and not stop.is_set():
            self.timer.add("decode", (time.perf_counter() - began) * 1000.0)
            self.frames_read += 1
            if not _put(out, (frame, began), stop.is_set):
                return
            began = time.perf_counter()
            ok, frame = capture.read()
            frame = frame if ok else None
        _put(out, _END, stop.is_set)

    def _infer_loop(self, decoded: queue.Queue, drawn: queue.Queue, stop: threading.Event,
                    workers: tuple[_Worker, ...]) -> None:
        while True:
            item = _get(decoded, workers)
            if item is _END:
                return
            bgr, began = item
            with self.timer.stage("preprocess"):
                # BGR (H, W, 3) -> RGB (3, H, W) on the runtime's device
                rgb = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1)
                images, boxes = self.runtime.prepare([rgb])
            with self.timer.stage("infer"):
                raw = self.runtime.run(images)
            with self.timer.stage("postprocess"):
                detection = self.runtime.decoder.decode(raw, boxes)[0]
            encoder = workers[1]
            if not _put(drawn, (rgb, detection, began), lambda: stop.is_set() or not encoder.is_alive()):
                raise encoder.error or PlugrcnnError("video: the encoder stopped early")

    def _write(self, writer: Any, drawn: queue.Queue, stop: threading.Event, written: list[int],
               bar: tqdm) -> None:
        while True:
            try:
                item = drawn.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if item is _END:
                return
            rgb, detection, began = item
            with self.timer.stage("draw"):
                image = self._draw(rgb, detection)
            with self.timer.stage("encode"):
                # RGB (3, H, W) -> BGR (H, W, 3) for OpenCV
                writer.write(np.ascontiguousarray(image.permute(1, 2, 0).cpu().numpy()[:, :, ::-1]))
            self.timer.add("latency", (time.perf_counter() - began) * 1000.0)
            written[0] += 1
            bar.update(1)

    def _draw(self, rgb: torch.Tensor, detection: dict[str, torch.Tensor]) -> torch.Tensor:
        device = self.draw_device
        try:
            return self.drawer(rgb.to(device), {k: v.to(device) for k, v in detection.items()})
        except RuntimeError as exc:
            if device.type == "cpu":
                raise
            # a head that draws on the CPU only: keep drawing there
            warnings.warn(f"drawing on {device} failed ({str(exc).splitlines()[0]}); drawing on the CPU")
            self.draw_device = torch.device("cpu")
            return self._draw(rgb, detection)


def _put(q: queue.Queue, item: Any, give_up: Callable[[], bool]) -> bool:
    """Put, unless `give_up()` turns true while the queue is full; True when the item went in."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if give_up():
                return False


def _get(q: queue.Queue, workers: tuple[_Worker, ...]) -> Any:
    """Get, but stop waiting (and re-raise) when a worker thread died."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            for worker in workers:
                if worker.error is not None:
                    raise worker.error
                if not worker.is_alive() and worker.name == "plugrcnn-encode":
                    raise PlugrcnnError("video: the encoder stopped early")
