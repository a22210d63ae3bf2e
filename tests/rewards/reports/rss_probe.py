"""Runs ``manage.py export_rewards`` in this process: a warm-up (imports, connection), then a
small export and a large one, and prints how far each raised the resident memory above where it
started (its peak, in kB) as JSON. Run by test_export_memory.py."""

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

    small, large = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    call_command("export_rewards", *small)
    growth = {}
    for name, export in (("small", small), ("large", large)):
        # Without the reset (a kernel that refuses it) the peak is the process's so far: a
        # large export that loaded its rows would still raise it by far more than a chunk.
        reset_peak()
        before = status_kb("VmRSS")
        call_command("export_rewards", *export)
        growth[name] = status_kb("VmHWM") - before
    print(json.dumps(growth))


if __name__ == "__main__":
    main()
