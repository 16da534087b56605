-- Seed of the ratings database for ratings v2 with DB_TYPE=mysql: database `test`, table
-- `ratings`, Reviewer1 gave 5 stars and Reviewer2 4 (the same as the in-memory v1 answer).
-- Load it with: mariadb -h 127.0.0.1 -uroot -ppassword < mysqldb-init.sql
-- Safe to run again: it only adds what is missing and resets the two seed rows.

CREATE DATABASE IF NOT EXISTS test;
USE test;

CREATE TABLE IF NOT EXISTS ratings (
  ReviewID INT NOT NULL,
  Rating INT,
  PRIMARY KEY (ReviewID)
);

INSERT INTO ratings (ReviewID, Rating) VALUES (1, 5), (2, 4)
  ON DUPLICATE KEY UPDATE Rating = VALUES(Rating);
