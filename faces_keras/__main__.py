import sys

from faces_keras.cli import entry

sys.exit(entry())
