from hpotool.entry import main

main()
