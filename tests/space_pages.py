"""Inside the Space's image, with no network: every page of the app, for every dataset the shipped weights cover,
renders through AppTest without an exception or an error message, and shows images or a message that says why it
has none (a page of training sweeps, say: the image carries no runs); the held-out sets the Reconstruct page draws
from are the full ones fetched at build time.

tests/space_smoke.sh pipes this file into `docker exec -i CONTAINER python -` (tests/ stays out of the image),
so it runs in the image's working directory, as the app's user, with the image's packages only.
"""
import os
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app import app  # app.py serves its entry script through st.App: AppTest runs that script
from genmodels.data import load_data

for name in ("mnist", "fashion-mnist"):
    held_out = load_data(name, "test")
    assert len(held_out) == 10_000, f"{name}: {len(held_out)} held-out images in the image, not the full 10,000"
    print(f"{name}: 10,000 held-out images from {held_out.source}")

entry = Path(app.script_path).resolve()
at = AppTest.from_file(str(entry), default_timeout=600)
at.run()
# The pages st.navigation registered in that run (AppTest keeps them to resolve switch_page; Streamlit is pinned).
pages = [info["script_path"] for info in at._registered_pages.values()]
failures = []
for dataset in at.sidebar.selectbox(key="dataset").options:
    for page in pages:
        at.sidebar.selectbox(key="dataset").set_value(dataset)
        at.switch_page(os.path.relpath(page, entry.parent)).run()
        problems = [e.value for e in (*at.exception, *at.error)]
        if not at.get("image") and not at.info:
            problems.append("no image and no message saying why")
        print(f"{dataset:>14} {Path(page).stem:<12} {len(at.get('image'))} images {'; '.join(problems)}")
        if problems:
            failures.append(f"{dataset} {Path(page).stem}")
sys.exit(f"pages that failed: {', '.join(failures)}" if failures else 0)
