from confprofile.cli import main

main()
