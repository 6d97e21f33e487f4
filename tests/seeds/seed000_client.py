# -*- coding: utf-8 -*-
# Seed 000's image client ("Python 建立 socket 通信传输图像", client.py), ported to Python 3.
# Changed to run on Python 3, and nothing else:
#   - `print x` statements became print(x) calls;
#   - the timestamp text is encoded before sending: s.send(('timestamp' + str(ticks)).encode())
#     (Python 3 sockets take bytes; base64.b64encode already returns bytes).
# For the test only: the server address and the image come from SEED_HOST, SEED_PORT and
# SEED_IMAGE (defaults: the article's 127.0.0.1, 6666 and ./1.png).

import socket
import sys
import base64
import time
import os

HOST = os.environ.get('SEED_HOST', '127.0.0.1')
PORT = int(os.environ.get('SEED_PORT', '6666'))
IMAGE = os.environ.get('SEED_IMAGE', r'./1.png')


def socket_client():
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect((HOST, PORT))
    except socket.error as msg:
        print(msg)
        sys.exit(1)

    print(s.recv(1024))

    f = open(IMAGE, 'rb')
    img_64 = base64.b64encode(f.read())
    f.close()

    ticks = time.time()

    while True:
        s.send(img_64)
        s.send(('timestamp' + str(ticks)).encode())
        s.close()
        break

if __name__ == '__main__':
    socket_client()
