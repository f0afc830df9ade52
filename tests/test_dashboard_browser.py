"""The dashboard in a real headless browser (Debian's chromium), on a snapshot of a real run.

One session fixture builds the snapshot the way a team does: ``affinity generate`` a shop
with a ground-truth campaign, ``affinity run`` the day before the campaign starts (its
audience is frozen), then ``affinity build-features`` + ``affinity measure --publish`` the
day it ends (its lift is measured and published), with one more ``affinity train`` in
between (two trainings in MLflow). ``affinity dashboard`` serves it; every
page must render its data without an error, and keep doing so while a publish swaps the
snapshot.

Set ``AFFINITY_DASHBOARD_SCREENSHOTS=docs/dashboard`` to refresh the README's screenshots.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from test_airflow_server import free_port

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]
AFFINITY = str(Path(sys.executable).with_name("affinity"))
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Flags this machine needs: no sandbox as root, no GPU, nothing fetched from the network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1700",
)
# Ground-truth campaigns of `generate --campaign-uplift` run 2026-09-27 .. 10-11.
SHOP = ["--customers", "800", "--products", "120", "--days", "100", "--seed", "3"]
LAUNCH, MEASURE, TRAIN_AGAIN = "2026-09-26", "2026-10-11", "2026-10-12"
RENDER_TIMEOUT = 120


@dataclass(frozen=True)
class Dashboard:
    url: str
    home: Path
    env: dict[str, str]
    pid: int

    @property
    def snapshot(self) -> Path:
        return self.home / "published" / "affinity.duckdb"

    def sql(self, query: str) -> list[tuple]:
        """Read the live snapshot directly (independently of the dashboard's code)."""
        with duckdb.connect(str(self.snapshot), read_only=True) as con:
            return con.execute(query).fetchall()


def _affinity(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [AFFINITY, *args], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, (
        f"affinity {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )


@pytest.fixture(scope="session")
def browser_paths() -> tuple[Path, Path]:
    """Debian's chromium and chromedriver; under CI a missing browser fails the test."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        message = (
            f"{', '.join(missing)} not found: install Debian's browser with "
            "`apt-get install chromium chromium-driver` (.ci/run does)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory, browser_paths) -> Iterator[Dashboard]:
    """A snapshot built by a real run plus a measured campaign, served by `affinity dashboard`."""
    home = tmp_path_factory.mktemp("dashboard_home")
    env = {
        **os.environ,
        "AFFINITY_HOME": str(home),
        "AFFINITY_TASK_RETRIES": "0",
        "AFFINITY_MLFLOW_UI_URL": "http://mlflow.example.test:5000",
    }
    shop = home / "shop"
    _affinity(env, "generate", "--out", str(shop), *SHOP, "--campaign-uplift", "0.2")
    _affinity(env, "run", "--data", str(shop), "--as-of", LAUNCH)
    _affinity(env, "build-features", "--as-of", MEASURE)
    # A second training on the later data: the model page has metrics over time.
    _affinity(env, "train", "--as-of", TRAIN_AGAIN)
    _affinity(env, "measure", "--as-of", MEASURE, "--publish")

    port = free_port()
    log = open(home / "dashboard.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [AFFINITY, "dashboard", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (home / "dashboard.log").read_text()
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, (home / "dashboard.log").read_text()
            time.sleep(1)
        yield Dashboard(url, home, env, server.pid)
    finally:
        os.kill(server.pid, signal.SIGINT)  # the supervisor forwards it to streamlit
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
        finally:
            log.close()


@pytest.fixture(scope="session")
def browser(browser_paths, tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(str(chromedriver)), options=options)
    driver.set_page_load_timeout(RENDER_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def _rendered(driver, title: str) -> bool:
    from selenium.webdriver.common.by import By

    apps = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
    if not apps or apps[0].get_attribute("data-test-script-state") != "notRunning":
        return False
    if title not in [h.text for h in driver.find_elements(By.CSS_SELECTOR, "h1")]:
        return False
    charts = driver.find_elements(By.CSS_SELECTOR, ".vega-embed")
    drawn = driver.find_elements(By.CSS_SELECTOR, ".vega-embed canvas, .vega-embed svg")
    return len(drawn) >= len(charts)


def open_page(driver, url: str, title: str) -> str:
    """Load a page, wait until Streamlit finished it; return its text. No error allowed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, RENDER_TIMEOUT, poll_frequency=0.5).until(lambda d: _rendered(d, title))
    time.sleep(0.5)  # let the last chart finish its layout before reading / screenshotting
    errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not errors, f"{url}: {errors[0].text[:2000]}"
    text = driver.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in text and "Nothing is published yet" not in text, text[:2000]
    return text


def chart_count(driver) -> int:
    from selenium.webdriver.common.by import By

    return len(driver.find_elements(By.CSS_SELECTOR, ".vega-embed canvas, .vega-embed svg"))


def screenshot(driver, name: str, tmp_path: Path) -> None:
    """Save the page (always in tmp; also in the repo when asked, for the README)."""
    target = tmp_path / f"{name}.png"
    driver.save_screenshot(str(target))
    assert target.stat().st_size > 20_000, "the screenshot is (nearly) blank"
    if folder := os.environ.get("AFFINITY_DASHBOARD_SCREENSHOTS"):
        destination = REPO_ROOT / folder
        destination.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, destination / f"{name}.png")


# --------------------------------------------------------------------------- pages


def test_run_health_page(dashboard: Dashboard, browser, tmp_path: Path) -> None:
    text = open_page(browser, f"{dashboard.url}/", "Run health")
    runs = dashboard.sql("SELECT run_id FROM pipeline_runs ORDER BY finished_at")
    assert len(runs) == 2  # the daily run, then the measurement's publish
    for (run_id,) in runs:
        assert run_id in text
    assert "Rows per published table" in text and "Stage times" in text
    assert chart_count(browser) == 2
    assert "Quarantine by rule" in text
    screenshot(browser, "health", tmp_path)


def test_segments_page(dashboard: Dashboard, browser, tmp_path: Path) -> None:
    text = open_page(browser, f"{dashboard.url}/segments", "Segments")
    segments = dashboard.sql(
        "SELECT DISTINCT rfm_segment FROM customer_segments WHERE rfm_segment IS NOT NULL"
    )
    assert len(segments) >= 3
    for (segment,) in segments:
        assert segment in text
    for (name,) in dashboard.sql("SELECT cluster_name FROM cluster_profiles"):
        assert name in text
    customers = dashboard.sql("SELECT count(*) FROM customer_segments")[0][0]
    assert f"{customers:,}" in text
    assert chart_count(browser) == 2  # segment sizes and the RFM grid
    screenshot(browser, "segments", tmp_path)


def test_customer_lookup_page(dashboard: Dashboard, browser, tmp_path: Path) -> None:
    # A customer with recommendations who is in a campaign audience.
    customer, campaign = dashboard.sql(
        "SELECT a.customer_id, a.campaign_name FROM campaign_audiences a "
        "JOIN recommendations r USING (customer_id) WHERE a.\"group\" = 'treatment' "
        "ORDER BY a.customer_id LIMIT 1"
    )[0]
    text = open_page(browser, f"{dashboard.url}/customer?customer={customer}", "Customer lookup")
    assert f"Customer {customer}" in text
    products = dashboard.sql(
        f"SELECT product_name, reason FROM recommendations WHERE customer_id = '{customer}' "
        "ORDER BY rank LIMIT 3"
    )
    for name, reason in products:
        assert name in text and reason in text
    segment = dashboard.sql(
        f"SELECT rfm_segment, cluster_name FROM customer_segments WHERE customer_id = '{customer}'"
    )[0]
    assert all(value in text for value in segment if value)
    assert campaign in text and "treatment" in text
    screenshot(browser, "customer", tmp_path)

    text = open_page(browser, f"{dashboard.url}/customer?customer=NOPE", "Customer lookup")
    assert "No customer `NOPE`" in text or "No customer NOPE" in text


def test_products_page(dashboard: Dashboard, browser, tmp_path: Path) -> None:
    product, name = dashboard.sql(
        "SELECT product_id, product_name FROM similar_products ORDER BY product_id LIMIT 1"
    )[0]
    text = open_page(browser, f"{dashboard.url}/products?product={product}", "Products")
    assert f"Similar to {name}" in text
    for (similar,) in dashboard.sql(
        f"SELECT similar_product_name FROM similar_products WHERE product_id = '{product}' "
        "ORDER BY rank LIMIT 3"
    ):
        assert similar in text
    top = dashboard.sql(
        "SELECT product_name FROM recommendations GROUP BY product_id, product_name "
        "ORDER BY count(*) DESC, product_id LIMIT 1"
    )[0][0]
    assert "Most recommended products" in text and top in text
    screenshot(browser, "products", tmp_path)


def test_campaigns_page(dashboard: Dashboard, browser, tmp_path: Path) -> None:
    text = open_page(browser, f"{dashboard.url}/campaigns", "Campaigns")
    results = dashboard.sql("SELECT campaign_id, conclusion FROM campaign_results")
    assert {r[0] for r in results} == {"CMP007", "CMP008"}  # the uplift and the placebo
    for campaign_id, conclusion in results:
        assert campaign_id in text and conclusion in text
    assert chart_count(browser) == 1  # the lift chart with its intervals
    for (name,) in dashboard.sql("SELECT DISTINCT campaign_name FROM campaign_audiences"):
        assert name in text
    assert "{{first_name}}" in text  # messages are published with the name left to the sender
    screenshot(browser, "campaigns", tmp_path)


def test_model_page(dashboard: Dashboard, browser, tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from selenium.webdriver.common.by import By

    text = open_page(browser, f"{dashboard.url}/model", "Model")
    uri = f"sqlite:///{dashboard.home / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("affinity-recommenders")
    runs = client.search_runs([experiment.experiment_id], "tags.pipeline = 'affinity-train'")
    assert len(runs) == 2
    hrefs = {a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a")}
    for run in runs:
        assert (
            f"http://mlflow.example.test:5000/#/experiments/{experiment.experiment_id}"
            f"/runs/{run.info.run_id}"
        ) in hrefs
        assert run.data.tags["as_of"] in text
    serving = dashboard.sql("SELECT any_value(model_version) FROM recommendations")[0][0]
    champion = client.get_model_version_by_alias("affinity-recommender", "champion").version
    assert f"Serving now\nv{serving}" in text
    assert f"Champion (MLflow)\nv{champion}" in text
    if any("ndcg_at_10" in run.data.metrics for run in runs):
        assert chart_count(browser) == 1  # metrics over time
    screenshot(browser, "model", tmp_path)


# --------------------------------------------------------------------------- publish swap


def _open_files(pid: int) -> list[str]:
    """Paths the process and its children hold open (Linux /proc)."""
    pids = [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    held = []
    for one in pids:
        for fd in Path(f"/proc/{one}/fd").iterdir():
            try:
                held.append(os.readlink(fd))
            except OSError:
                continue
    return held


def test_dashboard_keeps_working_while_a_publish_swaps_the_snapshot(
    dashboard: Dashboard, browser
) -> None:
    open_page(browser, f"{dashboard.url}/", "Run health")
    old_inode = dashboard.snapshot.stat().st_ino
    # Between page views the server holds no descriptor on the snapshot (nothing pinned).
    assert not [p for p in _open_files(dashboard.pid) if p.endswith(".duckdb")]

    publish = subprocess.Popen(
        [AFFINITY, "publish", "--run-id", "swap-under-the-dashboard"],
        env=dashboard.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    views = 0
    while publish.poll() is None or views == 0:
        open_page(browser, f"{dashboard.url}/segments", "Segments")  # renders during the swap
        views += 1
    output = publish.stdout.read()
    assert publish.returncode == 0, output
    assert dashboard.snapshot.stat().st_ino != old_inode  # a new file was swapped in

    text = open_page(browser, f"{dashboard.url}/", "Run health")
    assert "swap-under-the-dashboard" in text  # the next view reads the new snapshot
