import sys

from faces_keras.cli import main

sys.exit(main())
