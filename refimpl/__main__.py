from refimpl.cli import main

# Guarded: worker processes started by "spawn" (refimpl.conditions.map_files) import the
# main module again, and must not run the command a second time.
if __name__ == "__main__":
    raise SystemExit(main())
