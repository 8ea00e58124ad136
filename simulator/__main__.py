import sys

from iemdcr_twin.simulator.cli import main

sys.exit(main())
