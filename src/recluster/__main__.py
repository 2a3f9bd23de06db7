from recluster.cli import main

main()
