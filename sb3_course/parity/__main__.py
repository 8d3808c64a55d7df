from sb3_course.parity.cli import main

main()
