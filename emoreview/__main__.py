from emoreview.cli import main

main()
