"""``python -m sb3_course.train``: the same as ``sb3-course train``."""

from sb3_course.cli import train

if __name__ == "__main__":
    train()
