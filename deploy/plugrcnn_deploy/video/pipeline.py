"""Video in, drawn video out: decode, inference and drawing overlap in three threads.

    reader thread:  OpenCV decode (BGR)                         -> queue
    main thread:    to RGB tensor, letterbox, run, decode heads -> queue
    writer thread:  draw (heads' draw), OpenCV encode (mp4v)

Bounded queues let the slowest stage set the pace (OpenCV and torch release the GIL in their
heavy calls).

On CUDA: stage times come from CUDA events recorded on the stream (no device-wide synchronize in
any thread; the events are read once at the end); each frame is copied once into a pinned host
buffer and uploaded once (non-blocking), converted to RGB on the GPU, and both the model input and
the drawing use that GPU tensor (masks, boxes and keypoints are drawn on the GPU by the heads);
the drawn frame comes back once for the encoder. Decoding runs on the GPU (NVDEC through TorchCodec)
when TorchCodec is installed and can open the video there; otherwise OpenCV decodes on the CPU, and
the run says so. Encoding is OpenCV mp4v on the CPU (TorchCodec encodes on the CPU only).
``VideoPipeline.notes`` records which paths ran. Frames of any size are letterboxed to the model's input (see video/frames.py) and drawn
at their own size, so the output video has the input's size, frame rate and frame count.

The output is written to a temporary file next to OUT and renamed only after the last frame; on
any error or interrupt the temporary file is deleted, so OUT is complete or absent.
"""
from __future__ import annotations

import math
import queue
import sys
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
from plugrcnn.inference.draw_detections import DetectionDrawer
from plugrcnn_deploy.formats.files import atomic_output
from plugrcnn_deploy.runtimes.base import Runtime
from plugrcnn_deploy.video.stats import StageTimer

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


class _PinnedUploader:
    """BGR (H, W, 3) numpy frames -> RGB (3, H, W) uint8 on a CUDA device: one copy into a pinned
    buffer, one non-blocking upload. A ring of buffers, each reused only after its upload finished."""

    def __init__(self, device: torch.device, slots: int) -> None:
        self.device = device
        self.slots: list[tuple[torch.Tensor, torch.cuda.Event] | None] = [None] * slots
        self.next = 0

    def __call__(self, bgr: np.ndarray) -> torch.Tensor:
        slot = self.slots[self.next]
        if slot is None or tuple(slot[0].shape) != bgr.shape:
            slot = (torch.empty(bgr.shape, dtype=torch.uint8, pin_memory=True), torch.cuda.Event())
            self.slots[self.next] = slot
        buffer, uploaded = slot
        uploaded.synchronize()  # this buffer's previous upload is done
        np.copyto(buffer.numpy(), bgr)
        on_device = buffer.to(self.device, non_blocking=True)
        uploaded.record()
        self.next = (self.next + 1) % len(self.slots)
        # (H, W, 3) BGR -> (3, H, W) RGB, on the GPU
        return on_device.flip(-1).permute(2, 0, 1).contiguous()


def _gpu_decoder(source: Path, device: torch.device) -> Any | None:
    """A TorchCodec decoder on `device` (NVDEC), or None when TorchCodec is missing or cannot."""
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError:
        return None
    try:
        return VideoDecoder(str(source), device=str(device))
    except Exception as exc:  # noqa: BLE001 - any failure means: decode with OpenCV instead
        warnings.warn(f"video: TorchCodec cannot decode {source.name} on {device} ({exc}); using OpenCV")
        return None


class VideoPipeline:
    def __init__(self, runtime: Runtime, drawer: DetectionDrawer, queue_size: int = 4) -> None:
        self.runtime = runtime
        self.drawer = drawer
        self.queue_size = queue_size
        self.draw_device = runtime.device
        self.gpu = runtime.device.type == "cuda"
        self.timer = StageTimer(runtime.device, events=self.gpu)
        self.upload = _PinnedUploader(runtime.device, queue_size + 2) if self.gpu else None
        self.frames_read = 0
        self.notes: dict[str, str] = {
            "timing": "CUDA events" if self.gpu else "host clock",
            "decode": "OpenCV (CPU)",
            "upload": "pinned buffer, one non-blocking copy per frame" if self.gpu else "none (CPU)",
            "draw": f"heads' draw on {runtime.device}",
            "encode": "OpenCV mp4v (CPU)",
        }

    def process(self, source: Path, output: Path, progress: bool = True) -> VideoReport:
        import cv2

        capture, fps, total = open_video(source)
        decoder = _gpu_decoder(source, self.runtime.device) if self.gpu else None
        if self.gpu:
            if decoder is None:
                print("video: no GPU decoder (TorchCodec with NVDEC not available); decoding with OpenCV on the CPU",
                      file=sys.stderr)
            else:
                self.notes["decode"] = f"TorchCodec on {self.runtime.device} (NVDEC)"
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
                    frames = self._run(decoder if decoder is not None else capture, first, writer, total, progress)
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
        if not hasattr(capture, "read"):  # a TorchCodec decoder: RGB (3, H, W) tensors on the GPU
            return self._read_tensors(capture, out, stop)
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

    def _read_tensors(self, decoder: Any, out: queue.Queue, stop: threading.Event) -> None:
        began = time.perf_counter()
        for frame in decoder:
            if stop.is_set():
                return
            self.timer.add("decode", (time.perf_counter() - began) * 1000.0)
            self.frames_read += 1
            if not _put(out, (frame, began), stop.is_set):
                return
            began = time.perf_counter()
        _put(out, _END, stop.is_set)

    def _to_rgb(self, frame: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A decoded frame -> RGB uint8 (3, H, W): on the GPU when the runtime is there (uploaded once)."""
        if isinstance(frame, torch.Tensor):  # decoded on the GPU already
            return frame
        if self.upload is not None:
            return self.upload(frame)
        # BGR (H, W, 3) -> RGB (3, H, W) on the CPU
        return torch.from_numpy(np.ascontiguousarray(frame[:, :, ::-1])).permute(2, 0, 1)

    def _infer_loop(self, decoded: queue.Queue, drawn: queue.Queue, stop: threading.Event,
                    workers: tuple[_Worker, ...]) -> None:
        while True:
            item = _get(decoded, workers)
            if item is _END:
                return
            bgr, began = item
            with self.timer.stage("preprocess"):
                rgb = self._to_rgb(bgr)
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
