"""JupyterLab for this project: the notebooks in nbs/, on 127.0.0.1 only, a random token, a free port.

    python tools/lab.py [--dir nbs] [--port P]     start JupyterLab and print its URL (what `make lab` runs)
    python tools/lab.py --kernelspec NB.ipynb ...  give notebooks the project's kernelspec (no "Select Kernel" dialog)

Notebooks saved from this JupyterLab are cleaned on save the way `nbdev_clean` cleans them (execution counts and editor
metadata go, outputs stay), so running a notebook in JupyterLab does not make `make test`'s sync check fail. As root,
JupyterLab needs `--allow-root`; it is added then. The browser test (tests/test_browser.py) starts the server with `start`.
"""

import json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# display_name is the kernel's name because nbdev_clean (2.4.14) rewrites it so; JupyterLab matches kernels by name
KERNELSPEC = {"name": "python3", "display_name": "python3", "language": "python"}


def free_port() -> int:
    "A TCP port on 127.0.0.1 that nothing listens on now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def clean_on_save(model, path, **kwargs):
    "JupyterLab pre-save hook: clean a notebook as `nbdev_clean` would before it is written."
    if model.get('type') != 'notebook' or model.get('content', {}).get('nbformat') != 4: return
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    cfg = get_config(path=ROOT)
    clean_nb(model['content'], cfg.clear_all, cfg.get('allowed_metadata_keys', '').split(),
             cfg.get('allowed_cell_metadata_keys', '').split(), cfg.clean_ids)


def _config_file() -> str:
    "A JupyterLab config file that installs `clean_on_save` as the pre-save hook."
    d = Path(tempfile.mkdtemp(prefix='modelopt_nb_lab_'))
    (d/'jupyter_lab_config.py').write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from lab import clean_on_save\nc.ContentsManager.pre_save_hook = clean_on_save\n")
    return str(d/'jupyter_lab_config.py')


def lab_command(root_dir, port: int, config: str) -> list:
    """The `jupyter lab` command line: localhost only, no browser, the given port and config file. The token is not on
    it (any local user can read a process's command line): the server reads it from `JUPYTER_TOKEN` in its environment."""
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ip', '127.0.0.1', f'--port={port}',
           '--port-retries=0', f'--ServerApp.root_dir={root_dir}',
           f'--config={config}', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')
    return cmd


def wait_ready(url: str, proc, timeout=90.0):
    "Wait until the server at `url` answers its API (raise if the process ends or `timeout` passes)."
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None: raise RuntimeError(f'JupyterLab exited with code {proc.returncode}')
        try:
            with urllib.request.urlopen(url.replace('/lab?', '/api/status?'), timeout=2): return
        except OSError: time.sleep(0.5)
    raise TimeoutError(f'JupyterLab did not answer within {timeout:.0f} s')


def start(root_dir, port: int = None, env: dict = None, log=None) -> tuple:
    "Start JupyterLab on `root_dir` in a session of its own: `(process, url with token)`, once it answers."
    port, token, config = port or free_port(), secrets.token_hex(16), _config_file()
    proc = subprocess.Popen(lab_command(root_dir, port, config), env={**os.environ, **(env or {}), 'JUPYTER_TOKEN': token},
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f'http://127.0.0.1:{port}/lab?token={token}'
    try: wait_ready(url, proc)
    except BaseException:
        stop(proc); raise
    finally: shutil.rmtree(Path(config).parent, ignore_errors=True)   # read at start-up only
    return proc, url


def stop(proc, timeout=15.0):
    "Stop the server `proc` (SIGTERM, then SIGKILL), and any kernel it left in its session."
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try: proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill(); proc.wait()
    try: os.killpg(proc.pid, signal.SIGKILL)   # the session start() made: the server's kernels, nothing else
    except (ProcessLookupError, PermissionError): pass


def set_kernelspec(paths) -> list:
    "Give each notebook in `paths` the project's kernelspec where it has none; the paths changed."
    changed = []
    for p in map(Path, paths):
        nb = json.loads(p.read_text())
        if nb.get('metadata', {}).get('kernelspec') == KERNELSPEC: continue
        nb.setdefault('metadata', {})['kernelspec'] = dict(KERNELSPEC)
        p.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + '\n')   # as nbdev writes
        changed.append(p)
    return changed


def main(argv):
    if argv[:1] == ['--kernelspec']:
        for p in set_kernelspec(argv[1:]): print(f'{p}: kernelspec set')
        return
    args = dict(zip(argv[::2], argv[1::2]))
    if set(args) - {'--dir', '--port'} or len(argv) % 2:
        sys.exit('usage: python tools/lab.py [--dir nbs] [--port P] | --kernelspec NB.ipynb ...')
    root = Path(args.get('--dir', ROOT/'nbs')).resolve()
    if not root.is_dir(): sys.exit(f'no such folder: {root}')
    for sig in (signal.SIGTERM, signal.SIGHUP): signal.signal(sig, lambda *_: sys.exit(0))   # stop the server too
    proc, url = start(root, int(args['--port']) if '--port' in args else None, log=sys.stderr)
    print(f'JupyterLab on {root}\n\n    {url}\n\nopen that URL in a browser (Ctrl-C stops the server)', flush=True)
    try: proc.wait()
    except KeyboardInterrupt: pass
    finally: stop(proc)


if __name__ == '__main__':
    main(sys.argv[1:])
