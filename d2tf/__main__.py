from d2tf.cli import main

main()
