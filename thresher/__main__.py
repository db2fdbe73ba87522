from thresher.cli import main; import sys; sys.exit(main())
