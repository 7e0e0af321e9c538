from hpotool.cli import main

main()
