"""What the benchmarks read of a process's memory (Linux)."""
from __future__ import annotations


def reset_peak_rss() -> bool:
    """Restart the kernel's high-water mark of resident memory (VmHWM, which ru_maxrss
    reports) at the current resident size; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False
