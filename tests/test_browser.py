"""A real browser runs the depth tutorial in JupyterLab, as a user would: Run All, no cell fails, the depth panel
renders as controls and answers its slider and its button. Then every panel (tests/data/panels.ipynb, on the shipped
model) renders as controls and answers its button. Debian Chromium (/usr/bin/chromium), driven by Playwright;
JupyterLab on a temporary copy of the tutorials: 127.0.0.1, a random token, a free port (tools/lab.py), stopped by PID.
The tutorial runs with MODELOPT_NB_QUICK=1 (a shorter distillation) to keep this test within a few minutes on 2 cores.
Screenshots go to out/screenshots/."""

import json, os, shutil, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = '/usr/bin/chromium'
TUTORIAL = '02_qwen3_depth_36_to_24.ipynb'
PANELS = ROOT/'tests'/'data'/'panels.ipynb'
SHOTS = ROOT/'out'/'screenshots'
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync']
RUN_TIMEOUT_S = int(os.environ.get('BROWSER_TEST_TIMEOUT', 600))   # Run All, seconds
# a cell queued or running ([*]), or the kernel busy (textContent: offscreen cells have no innerText)
BUSY = ("[...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(e => e.textContent.includes('*')) || "
        "!!document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=\"busy\"]')")

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(f'{CHROMIUM} is missing: install Debian chromium (`apt-get install -y chromium`; `make test` does '
                'that when run as root)', allow_module_level=True)
pytest.importorskip('jupyterlab', reason='jupyterlab is not installed (a dev requirement: pip install -e ".[dev]")')
sync_api = pytest.importorskip('playwright.sync_api', reason='playwright is not installed (a dev requirement)')
sys.path.insert(0, str(ROOT/'tools'))
import lab  # noqa: E402


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    "JupyterLab on a copy of nbs/tutorials; yields (url, folder) and stops the server it started."
    d = tmp_path_factory.mktemp('tutorials')
    for p in [*(ROOT/'nbs'/'tutorials').glob('*.ipynb'), PANELS]: shutil.copy(p, d)
    with open(d/'jupyterlab.log', 'w') as log:
        # workspaces (which notebooks a page reopens) in the test's own folder, not the user's
        env = {'MODELOPT_NB_QUICK': '1', 'OMP_NUM_THREADS': '1', 'JUPYTERLAB_WORKSPACES_DIR': str(d/'.workspaces')}
        proc, url = lab.start(d, env=env, log=log)
        try: yield url, d
        finally: lab.stop(proc)
        assert proc.poll() is not None


@pytest.fixture(scope='module')
def browser():
    "Debian Chromium, headless."
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try: yield b
        finally: b.close()


def _open(browser, url, name, height=1000):
    "A page with notebook `name` open, alone in a fresh workspace of its own, and its kernel idle."
    pg = browser.new_page(viewport={'width': 1400, 'height': height})
    pg.goto(url.replace('/lab?', f'/lab/workspaces/{Path(name).stem}/tree/{name}?reset&'))
    pg.wait_for_selector('.jp-Notebook .jp-Cell', timeout=60_000)
    _wait_kernel(pg, url, name)
    return pg


@pytest.fixture(scope='module')
def page(server, browser):
    "A Chromium page with the tutorial open and its kernel idle."
    pg = _open(browser, server[0], TUTORIAL)
    yield pg
    pg.close()


def _wait_kernel(page, url, name, timeout=120):
    "Wait for an idle kernel for notebook `name`; fail on a dialog (without a kernelspec: 'Select Kernel')."
    t = time.time()
    while time.time() - t < timeout:
        dialog = page.locator('.jp-Dialog')
        assert not dialog.count(), f'a dialog opened with the notebook: {dialog.first.text_content()[:200]}'
        with urllib.request.urlopen(url.replace('/lab?', '/api/sessions?'), timeout=5) as r: sessions = json.load(r)
        if any(s['path'].endswith(name) and s['kernel']['execution_state'] == 'idle' for s in sessions): return
        time.sleep(0.5)
    raise TimeoutError(f'no idle kernel for {name} after {timeout} s')


def _prompts(page) -> list:
    return page.eval_on_selector_all('.jp-Notebook .jp-CodeCell .jp-InputPrompt', 'els => els.map(e => e.textContent)')


def _run_all(page) -> float:
    "Run > Run All Cells; wait until no cell is queued or running. The seconds it took."
    t = time.time()
    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
    page.wait_for_function(f"() => {BUSY}", timeout=30_000)
    page.wait_for_function(f"() => !({BUSY})", timeout=RUN_TIMEOUT_S*1000, polling=1000)
    return time.time() - t


def _panel(page):
    "The depth panel's widget box (the one with the 'keep layers' slider)."
    box = page.locator('.jp-OutputArea-output .widget-vbox').filter(has=page.locator('.widget-slider')).first
    box.scroll_into_view_if_needed()
    return box


def _state(box) -> tuple:
    "The panel's info text and the source of its plot."
    return box.locator('.widget-html').first.text_content(), box.locator('img').first.get_attribute('src')


def _run_clean(page, shot):
    "Run All in `page`; check that every cell ran, none failed and every widget renders as controls."
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert not page.locator('.jp-Dialog').count(), 'a dialog (e.g. "Select Kernel") opened with the notebook'
    for no in page.locator('.jp-Notification-Toast-Close').all(): no.click()   # the "Jupyter news?" question
    try: took = _run_all(page)
    except Exception:
        page.screenshot(path=str(SHOTS/f'{shot}_run_all_failed.png'), full_page=True); raise
    print(f'{shot}: Run All {took:.0f} s')
    page.screenshot(path=str(SHOTS/f'{shot}_after_run_all.png'), full_page=True)
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    errors = [t for t in errors.all_text_contents() if 'Traceback' in t]
    assert not errors, errors[0][-3000:]
    prompts = _prompts(page)
    assert all(p.strip(' []:').isdigit() for p in prompts), f'cells not run: {prompts}'
    text = page.locator('.jp-Notebook').text_content()
    assert 'Error displaying widget' not in text and 'Traceback' not in text
    assert 'Panel object at' not in text and 'VBox(children' not in text, 'a widget shows as its text repr'


def test_depth_tutorial_runs_in_jupyterlab(page):
    _run_clean(page, 'tutorial')
    page.locator('.jp-CodeCell').filter(has_text='progress=True').first.evaluate('e => e.scrollIntoView()')
    page.screenshot(path=str(SHOTS/'tutorial_distill.png'))


def test_depth_panel_answers(page):
    box = _panel(page)
    for sel in ('.widget-slider', '.widget-dropdown select', 'button.jupyter-button'):
        assert box.locator(sel).count(), f'the panel has no {sel}'
    info0, img0 = _state(box)
    assert info0.startswith('remove') and img0, (info0, img0)
    box.screenshot(path=str(SHOTS/'depth_panel_before.png'))
    box.locator('.noUi-handle').first.focus()
    for _ in range(4): page.keyboard.press('ArrowLeft')
    page.wait_for_function('([el, s]) => el.textContent !== s',
                           arg=[box.locator('.widget-html').first.element_handle(), info0], timeout=30_000)
    page.wait_for_function('([el, s]) => el.querySelector("img") && el.querySelector("img").src !== s',
                           arg=[box.element_handle(), img0], timeout=30_000)
    info1, img1 = _state(box)
    assert info1.startswith('remove') and len(info1) > len(info0) and img1 != img0, (info0, info1)
    box.locator('button.jupyter-button').first.click()
    page.wait_for_function('el => el.textContent.includes("perplexity")',
                           arg=box.locator('.widget-html').first.element_handle(), timeout=60_000)
    info2, img2 = _state(box)
    assert 'perplexity' in info2 and img2, info2
    box.screenshot(path=str(SHOTS/'depth_panel_after.png'))


def test_saved_notebook_is_clean(server, page):
    "Saving from JupyterLab cleans the notebook as nbdev_clean would; the saved run has no error output."
    _, folder = server
    page.keyboard.press('Control+s')
    nb_path = folder/TUTORIAL
    deadline = time.time() + 30
    while time.time() < deadline:
        nb = json.loads(nb_path.read_text())
        if any(c.get('outputs') for c in nb['cells']): break
        time.sleep(0.5)
    assert any(c.get('outputs') for c in nb['cells']), 'the notebook was not saved'
    assert not [o for c in nb['cells'] for o in c.get('outputs', []) if o['output_type'] == 'error']
    assert all(c.get('execution_count') is None for c in nb['cells'] if c['cell_type'] == 'code')
    test_keys = set(nb['metadata']) - {'kernelspec', 'jupytext', 'widgets'}
    assert not test_keys, f'metadata nbdev_clean would strip: {test_keys}'
    assert nb['metadata']['kernelspec']['name'] == 'python3'


# (panel, its button, a text its box shows once the button's work is done)
BUTTONS = [('CalibrationPanel', 'run', 'collected'), ('DepthPanel', 'measure', '· calibration perplexity'),
           ('WidthPanel', 'measure', '· calibration perplexity'), ('SparsityPanel', 'apply', 'panel.result'),
           ('DistillPanel', 'start', 'finished at step'), ('EvalPanel', 'run', 'scored'),
           ('BenchmarkPanel', 'run', 'measured on this machine')]


LOADED = 'el => [...el.querySelectorAll("img")].every(i => i.complete && i.naturalWidth > 0)'   # plots drawn


def test_every_panel_renders_and_answers(server, browser):
    pg = _open(browser, server[0], PANELS.name, height=1600)   # the tallest panel, with its results, fits in view
    try:
        _run_clean(pg, 'panels')
        for name, button, done in BUTTONS:
            cell = pg.locator('.jp-CodeCell').filter(has_text=f'{name}(').last
            box = cell.locator('.jp-OutputArea-output .widget-vbox').first
            box.scroll_into_view_if_needed()
            assert box.locator('button.jupyter-button').count(), f'{name} renders no buttons'
            box.locator('button.jupyter-button').filter(has_text=button).first.click()
            try:
                pg.wait_for_function('([el, s]) => el.textContent.includes(s)', arg=[box.element_handle(), done],
                                     timeout=120_000)
                pg.wait_for_function(LOADED, arg=box.element_handle(), timeout=30_000)
            finally:
                box.scroll_into_view_if_needed(); box.screenshot(path=str(SHOTS/f'panel_{name}.png'))
            assert 'Traceback' not in box.text_content(), f'{name}: {box.text_content()[-2000:]}'
    finally: pg.close()
