"""Training progress: a bar on a terminal, one plain line per epoch otherwise."""
import sys
import time


def format_epoch(metrics, epochs, n_train):
    """``epoch 2/5  loss 0.4123  accuracy 0.8510  val_loss ...  lr 0.05  12.3s  4,870 img/s``
    (``test_loss``, ``test_accuracy`` where the held-out figures are the test split's);
    ``n_train``: the images trained on in each epoch."""
    parts = [f"epoch {metrics['epoch']}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"):
        if metrics.get(key) is not None:
            parts.append(f"{key} {metrics[key]:.4f}")
    if metrics.get("lr") is not None:
        parts.append(f"lr {metrics['lr']:.4g}")
    seconds = metrics.get("seconds", 0.0)
    parts.append(f"{seconds:.1f}s")
    if seconds > 0:
        parts.append(f"{n_train / seconds:,.0f} img/s")
    return "  ".join(parts)


def _duration(seconds):
    """``42s``, ``3m05s`` or ``1h02m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Reports a run on ``stream`` (stderr by default)."""

    BAR_WIDTH = 30
    REDRAW_SECONDS = 0.1

    def __init__(self, epochs, n_train, stream=None, bar=None):
        self.stream = sys.stderr if stream is None else stream
        self.bar = self.stream.isatty() if bar is None else bar
        self.epochs, self.n_train = epochs, n_train
        self._epoch, self._last_draw = 0, 0.0
        self._started, self._loss_sum = time.monotonic(), 0.0

    def start_epoch(self, epoch):
        if epoch != self._epoch:
            self._epoch, self._started, self._loss_sum = epoch, time.monotonic(), 0.0

    def batch(self, done, total, loss):
        """After batch ``done`` of ``total``: the bar, the images per second and the mean
        loss of the epoch so far, and the time the epoch has left."""
        self._loss_sum += loss
        if not self.bar:
            return
        now = time.monotonic()
        if done < total and now - self._last_draw < self.REDRAW_SECONDS:
            return
        self._last_draw = now
        filled = int(self.BAR_WIDTH * done / total)
        bar = "#" * filled + "." * (self.BAR_WIDTH - filled)
        elapsed = max(now - self._started, 1e-9)
        rate = self.n_train * done / total / elapsed
        left = elapsed * (total - done) / done
        self.stream.write(f"\repoch {self._epoch}/{self.epochs} [{bar}] {done}/{total}  "
                          f"loss {self._loss_sum / done:.4f}  {rate:,.0f} img/s  "
                          f"{_duration(left)} left\033[K")
        self.stream.flush()

    def end_epoch(self, metrics):
        if self.bar:
            self.stream.write("\r\033[K")  # clear the bar line before the summary
        self.stream.write(format_epoch(metrics, self.epochs, self.n_train) + "\n")
        self.stream.flush()

    def message(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()
