# Seed 002's control process ("Python实现socket通信", 控制进程). It was Python 3 already:
# unchanged except, for the test only, the server address from SEED_HOST and SEED_PORT
# (defaults: the article's 127.0.0.1 and 8233). It reads its commands from standard input.
import socket
import os

HOST = os.environ.get('SEED_HOST', '127.0.0.1')
PORT = int(os.environ.get('SEED_PORT', '8233'))

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.connect((HOST, PORT))

while True:
    msg = input("Please input msg:")

    s.send(msg.encode())
    data = s.recv(1024)

    print(data.decode('utf-8'))
    if msg == "exit":
        s.close()
        break
