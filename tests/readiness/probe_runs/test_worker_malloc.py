"""A worker fixes glibc's mmap threshold, so that large blocks go back to the system when freed."""

from celery.signals import worker_init

from readiness.probe_runs import tasks


def test_a_worker_fixes_the_mmap_threshold_when_it_starts(monkeypatch):
    assert any(receiver is tasks.fix_mmap_threshold for _, receiver in worker_init.receivers)
    calls = []

    class Libc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(tasks.ctypes, "CDLL", lambda name: Libc())
    assert tasks.fix_mmap_threshold(sender=None) is True
    assert calls == [(-3, 128 * 1024)]  # M_MMAP_THRESHOLD, glibc's starting value


def test_the_threshold_is_set_on_this_glibc():
    # The image (python:3.11-slim, Debian) and CI both run glibc.
    assert tasks.fix_mmap_threshold(sender=None) is True


def test_without_glibcs_mallopt_a_worker_starts_all_the_same(monkeypatch):
    class Musl:
        pass

    monkeypatch.setattr(tasks.ctypes, "CDLL", lambda name: Musl())
    assert tasks.fix_mmap_threshold(sender=None) is False
