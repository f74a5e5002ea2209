import io

from scaling.progress import Progress

ROW = {"tokens": 2048, "loss": 3.5, "lr": 1e-3, "tokens_per_s": 1000.0}


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = Progress(10, 0, 256, stream=stream)
    progress.update(1, None)
    progress.update(2, ROW)
    progress.update(3, dict(ROW, val_loss=3.2))
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("step 2/10") and "loss 3.5000" in lines[0] and "eta" in lines[0]
    assert "val_loss 3.2000" in lines[1]


def test_disabled_prints_nothing_but_tracks_step():
    stream = io.StringIO()
    progress = Progress(10, 4, 256, enabled=False, stream=stream)
    progress.update(7, ROW)
    assert stream.getvalue() == "" and progress.last_step == 7


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_bar_on_a_terminal():
    stream = FakeTerminal()
    progress = Progress(10, 0, 256, stream=stream)
    progress.update(5, ROW)
    progress.close()
    assert "5/10" in stream.getvalue() and "loss=3.5000" in stream.getvalue()
