"""Run every benchmark script in this folder, one after the other (``make bench``).

``peers.py`` (hours; ``make peers``), ``peer_spaces.py`` (its search spaces, not a
script), ``chapter_seeds.py`` (chapters executed again; ``make seeds``) and
``part4_sequential.py`` (hours on a CPU: run it alone, on a GPU if you have one) are left
out."""
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
failed = []
for script in sorted(here.glob("*.py")):
    if script.name in (Path(__file__).name, "peers.py", "peer_spaces.py", "chapter_seeds.py",
                       "part4_sequential.py"):
        continue
    print(f"\n=== {script.name} ===", flush=True)
    if subprocess.run([sys.executable, str(script)], cwd=here.parent).returncode != 0:
        failed.append(script.name)
if failed:
    sys.exit(f"failed: {', '.join(failed)}")
