from srpipe.cli import main

main()
