"""Runs ``manage.py export_rewards`` in this process: a warm-up of at least one chunk (imports,
connection, one chunk's buffers), then the given export; prints the resident memory before the
export and its peak during it, in kB, as JSON. Run by test_export_memory.py."""

import json
import os
import sys

import django


def status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise LookupError(field)


def reset_peak() -> bool:
    """Linux: writing 5 to clear_refs resets the peak resident size (VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.management import call_command

    warm_up, export = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    call_command("export_rewards", *warm_up)
    peak_reset = reset_peak()
    before = status_kb("VmRSS")
    call_command("export_rewards", *export)
    print(json.dumps({"before": before, "peak": status_kb("VmHWM"), "peak_reset": peak_reset}))


if __name__ == "__main__":
    main()
