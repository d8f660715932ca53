from trustfence.agent.cli import main

main()
