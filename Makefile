# OneMap: `make run` serves the platform, `make test` runs the suite. Both install what is
# missing first (bin/bootstrap), start the private PostGIS cluster unless DATABASE_URL is
# set (bin/pg), and migrate. See README.md.
SHELL := /bin/bash
FLASK := .venv/bin/flask --app wsgi
export PORT ?= 8000

.PHONY: run test stop bootstrap db bench clean

bootstrap:
	@bin/bootstrap all

db: bootstrap
	@bin/pg start
	@$(FLASK) db upgrade

run: db
	@$(FLASK) demo load --if-empty
	@$(FLASK) tiles seed --if-missing
	@bin/serve start

test: db
	.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: db
	@benchmarks/run

stop:
	@bin/serve stop
	@bin/pg stop

clean: stop
	rm -rf var .venv
