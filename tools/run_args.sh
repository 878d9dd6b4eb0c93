#!/bin/sh
# Runs its arguments as a command: the script of an sh_test whose args name what to run (an
# sh_test must have a script of its own).
exec "$@"
