# Shouhu: `make run` starts everything, `make test` runs every test.
# Needs only Python 3.11 with venv, PostgreSQL and Redis; installs the rest itself.
PYTHON ?= python3.11
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: install browser field-app db run test test-fast bench chaos clean

# uv itself lives in its own small venv, so `uv sync` can keep .venv exactly as locked.
$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.synced

# The browser tests (dashboard, field app) drive the system's Chromium through Playwright: no browser
# download, Debian's package (apt needs root, as on the CI machines). The Noto CJK fonts draw the
# Chinese of the screens in screenshots (without them every character is a box).
CHROMIUM ?= /usr/bin/chromium
CJK_FONT ?= /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
browser:
	@test -x $(CHROMIUM) -a -f $(CJK_FONT) || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk; }

# The field app (apps/field, Vue + Vite): npm from the registry, built into apps/field/dist (not
# committed), which the visits service serves at /app/.
FIELD := apps/field
FIELD_SOURCES := $(shell find $(FIELD)/src $(FIELD)/public -type f 2>/dev/null) $(FIELD)/index.html $(FIELD)/vite.config.js

$(FIELD)/node_modules/.installed: $(FIELD)/package-lock.json
	cd $(FIELD) && npm ci --no-audit --no-fund
	touch $@

$(FIELD)/dist/index.html: $(FIELD)/node_modules/.installed $(FIELD_SOURCES)
	cd $(FIELD) && npm run build

field-app: $(FIELD)/dist/index.html

db: install
	$(BIN)/shouhu db create
	$(BIN)/shouhu db upgrade

run: db field-app
	$(BIN)/shouhu run

test: install browser field-app
	$(BIN)/python -m pytest -n auto --durations=15

test-fast: install browser field-app
	$(BIN)/python -m pytest -n auto -m "not slow"

bench: db
	$(BIN)/python -m bench

# Jepsen-style faults (chaos/): its own PostgreSQL cluster and Redis server, started and broken at will;
# needs PostgreSQL's server binaries and redis-server installed, not running. Knobs: CHAOS_SECONDS, CHAOS_RATE, CHAOS_SEED.
chaos: install
	$(BIN)/python -m chaos

clean:
	rm -rf $(VENV) $(TOOLS) test-artifacts .pytest_cache $(FIELD)/node_modules $(FIELD)/dist
