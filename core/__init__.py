"""hms-stack's ground floor: what every stage shares and nothing above it decides.

errors.py        UserFacingError / DataError: bad input, one line
cli.py           the command line (`hms-stack COMMAND`, `python -m STAGE COMMAND`)
config.py        typed `key=value` / `config=FILE` overrides of frozen dataclass configs
artifacts.py     atomic writes stamped with the code version and config
schema.py        names fixed by the competition (classes, columns, rates)
metric.py        Kaggle's KL divergence
vote_weights.py  how much a row counts by its voter count
device.py        which torch device a stage runs on
work.py          the WORK folder's layout: every path a stage reads or writes
"""

HMS_STACK = True  # marker: the Kaggle entry point checks that this name resolves to hms-stack
